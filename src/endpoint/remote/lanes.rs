//! Several SFTP sessions, "lanes", for far servers: on one connection, and
//! for a large file on a few more connections too.
//!
//! SSH flow control gives each channel its own window, and OpenSSH's server
//! opens 2 MiB for a session: one SFTP session moves at most 2 MiB per
//! round trip however fast the link, 20 MB/s across 100 ms. Each extra
//! session is a channel with a window of its own. A far server (as the
//! first session's round trip measures it) gets more, or as many as
//! `--streams` asks; a large file's reads and writes are then spread over
//! all of them ([`super::SftpFile`]: reads stripe by offset, writes go to
//! the session with the fewest of the file's writes in flight), and a
//! tree's small files go out on whichever session has the fewest open. A
//! near server gets a second session too when a file of 256 MiB or more
//! moves: there the limit is one session's chain of processes, not its
//! window ([`Lanes::widen_for_large`]).
//!
//! The other sessions' channels open beside the first session's where the
//! connection's own round trip says the server is far ([`Early`]); their
//! SFTP handshake follows the first's, while two more measures of the
//! round trip make sure the server is far (a busy machine can slow one
//! answer; sessions opened for a server found near close again). Each
//! joins as it opens: a run never waits for them (a
//! session costs the server a process start, its login shell's too, and
//! they come up one after the other), and a large file already under way
//! widens onto each. A server that refuses one (OpenSSH's `MaxSessions`,
//! 10 by default, is shared with the helper's and the shell tier's
//! sessions) leaves the run with those it got, said under `-v`.
//!
//! Every session of one connection shares its TCP window, 4 MiB a round
//! trip where Linux sends by default: a large file across a far link gets
//! up to three more connections, two sessions each
//! ([`Lanes::connect_for_large`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use super::tier::OnChosen;
use crate::error::Result;
use crate::sftp::Sftp;
use crate::ssh::{Connection, SftpChannel, FITTING_SESSIONS, FREE_SESSIONS};

/// What opening the other sessions came to.
#[derive(Default)]
struct Opened {
    joined: usize,
    /// Why the last one that did not open did not.
    refused: Option<String>,
}

impl Opened {
    async fn join_all(
        &mut self,
        opening: impl Iterator<Item = impl std::future::Future<Output = Result<(), String>>>,
    ) {
        let mut opening: FuturesUnordered<_> = opening.collect();
        while let Some(opened) = opening.next().await {
            match opened {
                Ok(()) => self.joined += 1,
                Err(why) => self.refused = Some(why),
            }
        }
    }
}

/// How many SFTP sessions a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Streams {
    /// As many as the first session's round trip calls for.
    #[default]
    Auto,
    /// Exactly this many (1: the first session alone), or as many as the
    /// server allows.
    Fixed(usize),
}

/// How many sessions, and where to tell how many opened (`-v`).
#[derive(Clone, Default)]
pub(crate) struct StreamChoice {
    pub streams: Streams,
    pub tell: Option<OnChosen>,
}

/// Round trips shorter than this fill any link with one session: 2 MiB
/// per 4 ms is 500 MB/s.
const NEAR: Duration = Duration::from_millis(4);

/// The same for a server on this machine, whose round trips are only the
/// scheduler's when the machine is busy: an emulated delay (a benchmark's)
/// of 20 ms or more still counts.
const NEAR_HERE: Duration = Duration::from_millis(20);

/// Further measures of the round trip before a far server gets more
/// sessions: the least of all is taken, so that one slow answer on a busy
/// machine is not mistaken for a far link.
const MORE_MEASURES: usize = 2;

/// The round trip each further session is worth: one per 14 ms, so 20 ms
/// gets two, 100 ms seven (the most).
const PER_SESSION: Duration = Duration::from_millis(14);

/// Most sessions chosen on their own: seven of OpenSSH's ten, leaving
/// room for the helper's and the shell tier's (two at once).
const AUTO_MOST: usize = 7;

/// A file at least this large gets a second session to a near server
/// ([`Lanes::widen_for_large`]).
const LARGE_NEAR: u64 = 256 << 20;

/// A file at least this large, across a far link, gets more connections
/// ([`Lanes::widen_for_large`]). One takes about ten round trips to dial,
/// authenticate and start its sessions, while the first carries at most
/// its TCP window (4 MiB) a round trip: some 40 MiB go meanwhile, whatever
/// the round trip, so a file three times that gains and a smaller one is
/// through about when they join.
const LARGE_FAR: u64 = 128 << 20;

/// The round trip each further connection is worth: one TCP connection's
/// window (4 MiB where Linux sends, its default `tcp_wmem` maximum) fills
/// 1 Gbit/s up to about 33 ms; 100 ms gets four connections.
const PER_CONNECTION: Duration = Duration::from_millis(25);

/// Most connections to one server.
const MOST_CONNECTIONS: usize = 4;

/// SFTP sessions on each further connection: 2 MiB of OpenSSH's channel
/// window each, one TCP window's worth together.
const SESSIONS_PER_CONNECTION: usize = 2;

/// Most sessions `--streams` may ask for.
pub(crate) const MOST: usize = 16;

/// The sessions worth having to a server `round_trip` away
/// (`on_this_machine`: reached on a loopback address).
pub(crate) fn sessions_for(round_trip: Duration, on_this_machine: bool) -> usize {
    let near = if on_this_machine { NEAR_HERE } else { NEAR };
    if round_trip < near {
        return 1;
    }
    let per = PER_SESSION.as_micros().max(1);
    let wanted = round_trip.as_micros().div_ceil(per) as usize;
    wanted.clamp(2, AUTO_MOST)
}

/// The connections worth having to a server `round_trip` away: one TCP
/// connection carries at most its window per round trip, however many
/// channels share it. A server near enough for one session needs one.
pub(crate) fn connections_for(round_trip: Duration, on_this_machine: bool) -> usize {
    if sessions_for(round_trip, on_this_machine) < 2 {
        return 1;
    }
    let per = PER_CONNECTION.as_micros().max(1);
    let wanted = round_trip.as_micros().div_ceil(per) as usize;
    wanted.clamp(1, MOST_CONNECTIONS)
}

/// The other sessions' channels, opened while the first session starts
/// when the connection's own round trip (keepalives answered, two round
/// trips after authentication) says the server is far. Only the channel
/// and its SFTP server process: the handshake on them waits for the
/// first session to say which server it is (ProFTPD's mod_sftp mixes up
/// the data of several sessions, and gets one). At 100 ms they join about
/// when the first is up, instead of half a second after it.
pub(crate) struct Early {
    /// The channels asked for, once the round trip said how many (taken
    /// when the lanes adopt them).
    opening: Option<JoinHandle<Vec<JoinHandle<Result<SftpChannel>>>>>,
}

impl Early {
    /// Starts opening channels for the sessions `streams` calls for.
    pub(crate) fn start(conn: &Arc<Connection>, streams: Streams) -> Option<Early> {
        if streams == Streams::Fixed(1) {
            return None;
        }
        let conn = conn.clone();
        let opening = tokio::spawn(async move {
            let wanted = match streams {
                Streams::Fixed(n) => n.clamp(1, MOST),
                Streams::Auto => {
                    // The second of two: the first answer right after
                    // authentication can wait on the server's Nagle (OpenSSH
                    // sets TCP_NODELAY only for a terminal), 40 ms even here.
                    let first = conn.time_round_trip().await;
                    let round_trip = first.min(conn.time_round_trip().await);
                    let wanted = sessions_for(round_trip, conn.on_this_machine());
                    tracing::debug!(?round_trip, wanted, "the connection's round trip");
                    wanted
                }
            };
            let extra = wanted.saturating_sub(1).min(FITTING_SESSIONS);
            (0..extra)
                .map(|_| {
                    let conn = conn.clone();
                    tokio::spawn(async move { conn.sftp_channel().await })
                })
                .collect()
        });
        Some(Early {
            opening: Some(opening),
        })
    }

    /// The channels opened early, each still opening.
    async fn channels(mut self) -> Vec<JoinHandle<Result<SftpChannel>>> {
        match self.opening.take() {
            Some(opening) => opening.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

/// Not wanted after all: no more are asked for (those asked for close as
/// they open, dropped).
impl Drop for Early {
    fn drop(&mut self) {
        if let Some(opening) = &self.opening {
            opening.abort();
        }
    }
}

/// The SFTP sessions of one connection: the first, and the others as they
/// open.
pub(crate) struct Lanes {
    first: Arc<Sftp>,
    /// How many are wanted: by the first measure of the round trip, then
    /// 1 if more measures find the server near after all.
    wanted: AtomicUsize,
    /// The others open so far, in the order they opened (only added to),
    /// each with the number of the connection it is on (0: `conn`).
    others: Mutex<Vec<(Arc<Sftp>, usize)>>,
    /// Woken when another session joins.
    joined: Notify,
    conn: Arc<Connection>,
    /// Where what came of the opening is told (`-v`).
    tell: Option<OnChosen>,
    /// Channels for the others, opened before the first session was up.
    early: tokio::sync::Mutex<Option<Early>>,
    /// Whether a large file may still ask for a second session to a near
    /// server ([`Lanes::widen_for_large`]): chosen on their own, near, and
    /// not asked yet.
    may_widen: AtomicBool,
    /// Whether it did: the second session is not a far server's.
    widened: AtomicBool,
    /// Whether a large file may still ask for more connections to a far
    /// server: sessions chosen on their own, not asked yet.
    may_connect: AtomicBool,
    /// Whether more connections are opening, or some opened: their
    /// sessions join the others even where one session was wanted
    /// (ProFTPD's, one per connection).
    connecting: AtomicBool,
}

impl Lanes {
    /// The lanes of `conn`, whose first session is `first`; the others
    /// (as many as `choice` says) start opening now, in the background.
    pub(crate) fn new(
        conn: Arc<Connection>,
        first: Arc<Sftp>,
        choice: StreamChoice,
        early: Option<Early>,
    ) -> Arc<Lanes> {
        let StreamChoice { streams, tell } = choice;
        let here = conn.on_this_machine();
        let mut wanted = match streams {
            Streams::Auto => sessions_for(first.round_trip(), here),
            Streams::Fixed(n) => n.clamp(1, MOST),
        };
        if wanted > 1 && first.quirks().one_session {
            let said = format!(
                "1 SFTP session carries the data to {}: it is ProFTPD's mod_sftp, \
                 which mixes up the data of several (proftpd issue 1897)",
                first.host()
            );
            tracing::info!("{said}");
            if let Some(tell) = &tell {
                tell(&said);
            }
            wanted = 1;
        }
        let may_widen = streams == Streams::Auto && wanted == 1 && !first.quirks().one_session;
        let lanes = Arc::new(Lanes {
            first,
            wanted: AtomicUsize::new(wanted),
            others: Mutex::new(Vec::new()),
            joined: Notify::new(),
            conn,
            tell,
            // Not wanted: closed now.
            early: tokio::sync::Mutex::new(early.filter(|_| wanted > 1)),
            may_widen: may_widen.into(),
            widened: AtomicBool::new(false),
            may_connect: (streams == Streams::Auto).into(),
            connecting: AtomicBool::new(false),
        });
        if wanted > 1 {
            let opening = lanes.clone();
            let confirm = streams == Streams::Auto;
            tokio::spawn(async move { opening.confirm_and_open(confirm, here).await });
        }
        lanes
    }

    /// Opens the other sessions; with `confirm`, while more measures of
    /// the round trip see whether the server is far after all (each round
    /// trip the sessions wait for is one a far link's copy runs without
    /// them). Sessions opened for a server found near are closed again.
    async fn confirm_and_open(&self, confirm: bool, here: bool) {
        let confirmed = async {
            if !confirm {
                return true;
            }
            let mut least = self.first.round_trip();
            for _ in 0..MORE_MEASURES {
                least = least.min(self.first.time_round_trip().await);
            }
            let wanted = sessions_for(least, here);
            tracing::debug!(?least, wanted, "round trip measured again");
            if wanted < 2 {
                self.wanted.store(1, Ordering::Relaxed);
                if let Ok(mut others) = self.others.lock() {
                    others.clear();
                }
                return false;
            }
            true
        };
        let (confirmed, outcome) = tokio::join!(confirmed, self.open_others());
        if confirmed {
            self.tell(outcome, "");
        }
    }

    /// A second session for a file of `bytes` to a near server, when the
    /// sessions were chosen on their own and this is the first such file:
    /// one session's chain (the server's sshd, then its one SFTP process
    /// writing or reading, then the reply) keeps a core idle, and a second
    /// process beside it moved a 1 GiB file on loopback 20 % sooner
    /// (docs/BENCHMARKS.md). Smaller files gain nothing for the process
    /// it costs the server. It opens in the background; the file widens
    /// onto it when it joins.
    pub(crate) fn widen_for_large(self: &Arc<Self>, bytes: u64) {
        self.connect_for_large(bytes);
        if bytes < LARGE_NEAR || !self.may_widen.swap(false, Ordering::Relaxed) {
            return;
        }
        self.widened.store(true, Ordering::Relaxed);
        self.wanted.store(2, Ordering::Relaxed);
        let opening = self.clone();
        tokio::spawn(async move {
            let outcome = opening.open_others().await;
            opening.tell(outcome, " for a large file");
        });
    }

    /// More connections for a file of `bytes` across a far link, when the
    /// sessions were chosen on their own and this is the first such file:
    /// TCP carries at most one window per round trip on each connection,
    /// 4 MiB where Linux sends by default, 40 MB/s across 100 ms however
    /// many sessions share it (docs/BENCHMARKS.md). They open in the
    /// background, each with [`SESSIONS_PER_CONNECTION`] sessions that join
    /// the others as they come up; a connection that would need a prompt,
    /// or that the server refuses, is left out (said under `-v`).
    fn connect_for_large(self: &Arc<Self>, bytes: u64) {
        if bytes < LARGE_FAR || !self.may_connect.swap(false, Ordering::Relaxed) {
            return;
        }
        // Found near after all (ProFTPD keeps one session however far).
        let one_session = self.first.quirks().one_session;
        let round_trip = self.first.round_trip();
        if (!self.far() && !one_session)
            || connections_for(round_trip, self.conn.on_this_machine()) < 2
        {
            return;
        }
        self.connecting.store(true, Ordering::Relaxed);
        let lanes = self.clone();
        tokio::spawn(async move { lanes.open_connections().await });
    }

    /// Opens the further connections and their sessions, once another
    /// measure of the round trip agrees the server is far.
    async fn open_connections(&self) {
        let here = self.conn.on_this_machine();
        let round_trip = self.first.round_trip();
        let least = round_trip.min(self.first.time_round_trip().await);
        let wanted = connections_for(least, here);
        tracing::debug!(?least, wanted, "connections for a large file");
        if wanted < 2 {
            self.connecting.store(false, Ordering::Relaxed);
            return;
        }
        let per = match self.first.quirks().one_session {
            true => 1,
            false => SESSIONS_PER_CONNECTION,
        };
        let opening = (1..wanted).map(|number| self.open_connection(number, per));
        let opened = futures::future::join_all(opening).await;
        let joined: usize = opened.iter().flatten().sum();
        let connections = opened.iter().filter(|o| o.is_ok()).count();
        if connections == 0 {
            self.connecting.store(false, Ordering::Relaxed);
        }
        let refused = opened.into_iter().find_map(|o| o.err());
        self.tell_connections(wanted, connections, joined, refused);
    }

    /// One more connection, numbered `number`, with `sessions` SFTP
    /// sessions on it; how many of them joined.
    async fn open_connection(&self, number: usize, sessions: usize) -> Result<usize, String> {
        let conn = self.conn.another().await.map_err(|e| e.to_string())?;
        let opening = (0..sessions).map(|_| Sftp::open(&conn));
        let mut joined = 0;
        for opened in futures::future::join_all(opening).await {
            match opened {
                Ok(sftp) if self.fits(&sftp) => {
                    self.join(sftp, number);
                    joined += 1;
                }
                Ok(_) => tracing::info!("a session on another connection differs from the first"),
                Err(e) => tracing::info!("a session on another connection did not open: {e}"),
            }
        }
        Ok(joined)
    }

    /// Says what the further connections came to (`-v`).
    fn tell_connections(
        &self,
        wanted: usize,
        connections: usize,
        joined: usize,
        refused: Option<String>,
    ) {
        let host = self.first.host();
        let mut said = format!(
            "{connections} more SSH connection{} carr{} {joined} more SFTP session{} to {host} \
             ({wanted} connections wanted for a large file across a round trip of {:.1} ms: \
             each TCP connection has a window of its own)",
            if connections == 1 { "" } else { "s" },
            if connections == 1 { "ies" } else { "y" },
            if joined == 1 { "" } else { "s" },
            self.first.round_trip().as_secs_f64() * 1000.0
        );
        if let Some(why) = refused {
            said = format!("another SSH connection to {host} did not open: {why}; {said}");
        }
        self.say(&said);
    }

    /// Logs `said`, and tells it (`-v`) unless the connection was lost
    /// meanwhile: that is the run's news, not this.
    fn say(&self, said: &str) {
        tracing::info!("{said}");
        if let (Some(tell), false) = (&self.tell, self.conn.is_closed()) {
            tell(said);
        }
    }

    /// How many sessions are wanted (fewer may open).
    pub(crate) fn wanted(&self) -> usize {
        self.wanted.load(Ordering::Relaxed)
    }

    /// Whether more than one session is wanted at all, on this connection
    /// or on further ones.
    pub(crate) fn several(&self) -> bool {
        self.wanted() > 1 || self.connecting.load(Ordering::Relaxed)
    }

    /// Whether the sessions are there for a far server's round trip (not
    /// only a second one for a large file to a near server).
    pub(crate) fn far(&self) -> bool {
        self.several() && !self.widened.load(Ordering::Relaxed)
    }

    /// The sessions open by now, the first first, then in the order they
    /// opened: a longer list later starts with this one.
    pub(crate) fn open_now(&self) -> Vec<Arc<Sftp>> {
        let others = self.others.lock().map(|o| o.clone()).unwrap_or_default();
        let others = others.into_iter().map(|(sftp, _)| sftp);
        std::iter::once(self.first.clone()).chain(others).collect()
    }

    /// The number of the connection `sftp` is on: 0 for the first, then
    /// each further one's.
    pub(crate) fn connection_of(&self, sftp: &Arc<Sftp>) -> usize {
        let Ok(others) = self.others.lock() else {
            return 0;
        };
        let on = others.iter().find(|(other, _)| Arc::ptr_eq(other, sftp));
        on.map_or(0, |(_, connection)| *connection)
    }

    /// Room for a file to open: on the session with the fewest files open
    /// among those open by now, else on the first that frees a handle or
    /// opens. (Waiting on one chosen session would keep files there that
    /// a session opened meanwhile could take.)
    pub(crate) async fn least_busy(&self) -> (Arc<Sftp>, Option<OwnedSemaphorePermit>) {
        if !self.several() {
            return (self.first.clone(), self.first.handle_slot().await);
        }
        loop {
            let joined = self.joined.notified();
            let open = self.open_now();
            let best = open.iter().max_by_key(|sftp| sftp.free_handles());
            let best = best.unwrap_or(&self.first);
            if let Some(slot) = best.handle_slot_now() {
                return (best.clone(), Some(slot));
            }
            let freed = open.iter().map(|sftp| Box::pin(sftp.handle_slot()));
            tokio::select! {
                (slot, which, _) = futures::future::select_all(freed) => {
                    return (open[which].clone(), slot);
                }
                () = joined => continue,
            }
        }
    }

    async fn open_others(&self) -> Opened {
        let extra = self.wanted() - 1;
        let early = self.early.lock().await.take();
        let mut early = match early {
            Some(early) => early.channels().await,
            None => Vec::new(),
        }
        .into_iter();
        let mut outcome = Opened::default();
        let fitting = (1..=extra.min(FITTING_SESSIONS))
            .map(|n| self.open_one(n > FREE_SESSIONS, early.next()))
            .collect::<Vec<_>>();
        // More opened early than wanted: closed.
        drop(early);
        outcome.join_all(fitting.into_iter()).await;
        let beyond = (FITTING_SESSIONS..extra).map(|_| self.open_one(false, None));
        outcome.join_all(beyond).await;
        outcome
    }

    /// Says how many sessions carry the data (`-v`), and `why` more than
    /// the round trip asks for.
    fn tell(&self, outcome: Opened, why: &str) {
        let wanted = self.wanted();
        let Opened { joined, refused } = outcome;
        let host = self.first.host();
        let carry = match joined + 1 {
            1 => "1 SFTP session carries".to_string(),
            n => format!("{n} SFTP sessions carry"),
        };
        let mut said = format!(
            "{carry} the data to {host} ({wanted} wanted{why}; round trip {:.1} ms)",
            self.first.round_trip().as_secs_f64() * 1000.0
        );
        if let Some(why) = refused {
            said = format!("the server refused another SFTP session: {why}; {said}");
        }
        self.say(&said);
    }

    /// Opens one more session, on `early`'s channel where one was opened
    /// before the first session was up; `take_slot`: first takes an exec
    /// slot off the connection for it (given back if it does not open).
    async fn open_one(
        &self,
        take_slot: bool,
        early: Option<JoinHandle<Result<SftpChannel>>>,
    ) -> Result<(), String> {
        let slot = match take_slot {
            true => self.conn.exec_slot_for_sftp().await,
            false => None,
        };
        let opened = match early {
            Some(channel) => match channel.await {
                Ok(Ok(channel)) => Sftp::open_on(&self.conn, channel).await,
                Ok(Err(e)) => Err(e),
                Err(e) => return Err(e.to_string()),
            },
            None => Sftp::open(&self.conn).await,
        };
        let sftp = match opened {
            Ok(sftp) if self.fits(&sftp) => sftp,
            Ok(_) => return Err("it differs from the first (limits or directory)".to_string()),
            Err(e) => return Err(e.to_string()),
        };
        // Found near meanwhile: it closes again, its slot given back.
        if !self.several() {
            return Ok(());
        }
        if let Some(slot) = slot {
            slot.forget();
        }
        self.join(sftp, 0);
        Ok(())
    }

    /// `sftp`, on the connection numbered `connection`, joins the others.
    fn join(&self, sftp: Sftp, connection: usize) {
        if let Ok(mut others) = self.others.lock() {
            others.push((Arc::new(sftp), connection));
        }
        self.joined.notify_waiters();
    }

    /// Whether `other` can carry what the first session's handles carry:
    /// requests as large, paths resolved from the same directory.
    fn fits(&self, other: &Sftp) -> bool {
        other.read_chunk() >= self.first.read_chunk()
            && other.write_chunk() >= self.first.write_chunk()
            && other.absolute(".") == self.first.absolute(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_servers_get_more_sessions() {
        let ms = Duration::from_millis;
        assert_eq!(sessions_for(Duration::from_micros(200), false), 1);
        assert_eq!(sessions_for(ms(3), false), 1);
        assert_eq!(sessions_for(ms(5), false), 2);
        assert_eq!(sessions_for(ms(20), false), 2);
        assert_eq!(sessions_for(ms(40), false), 3);
        assert_eq!(sessions_for(ms(100), false), 7);
        assert_eq!(sessions_for(ms(250), false), 7);
        // This machine, busy: 5 or 15 ms is its scheduler, not a link.
        assert_eq!(sessions_for(ms(5), true), 1);
        assert_eq!(sessions_for(ms(15), true), 1);
        assert_eq!(sessions_for(ms(21), true), 2);
        assert_eq!(sessions_for(ms(100), true), 7);
    }

    #[test]
    fn far_servers_get_more_connections() {
        let ms = Duration::from_millis;
        assert_eq!(connections_for(ms(3), false), 1);
        assert_eq!(connections_for(ms(20), false), 1);
        assert_eq!(connections_for(ms(30), false), 2);
        assert_eq!(connections_for(ms(50), false), 2);
        assert_eq!(connections_for(ms(100), false), 4);
        assert_eq!(connections_for(ms(250), false), 4);
        // This machine: only an emulated delay counts.
        assert_eq!(connections_for(ms(15), true), 1);
        assert_eq!(connections_for(ms(31), true), 2);
    }
}
