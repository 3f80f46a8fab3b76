//! User authentication on an established SSH connection, in OpenSSH's
//! order: the ssh-agent's keys, then identity files (asking for a
//! passphrase only when there is a terminal or an SSH_ASKPASS program), then,
//! with one of those only, keyboard-interactive and password.
//!
//! It records what it tried so that a failure says what to fix, and never
//! records or logs passwords, passphrases or key material.

use std::ffi::OsString;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use russh::client::{AuthResult, Handle, Handler, KeyboardInteractiveAuthResponse, Prompt};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{AgentAuthError, MethodKind, MethodSet};

use crate::report::PromptGuard;
use crate::ssh::config::{home_dir, HostConfig, IdentityAgent};

/// How authentication may interact with the user.
#[derive(Debug, Clone)]
pub(crate) struct AuthOptions {
    /// May prompt on a terminal (the caller decides: stdin is a tty and not
    /// BatchMode). Whether an SSH_ASKPASS program may ask is decided here.
    pub interactive: bool,
    /// Clears the progress bars off the terminal while a prompt is shown.
    pub prompts: PromptGuard,
}

pub(crate) use crate::error::auth::AuthError;

/// Authenticates `cfg.user` on `handle`, stopping at the first success.
pub(crate) async fn authenticate<H: Handler>(
    handle: &mut Handle<H>,
    cfg: &HostConfig,
    opts: &AuthOptions,
) -> Result<(), AuthError> {
    // BatchMode forbids every prompt, an askpass window included (OpenSSH's
    // rule); the caller has already folded it into `interactive`.
    let asker = if cfg.batch_mode {
        Asker::Nobody
    } else {
        choose_asker(opts.interactive, &AskpassEnv::from_process())
    };
    let prompter: Option<Arc<dyn Prompter>> = match asker {
        Asker::Terminal => Some(Arc::new(Terminal {
            prompts: opts.prompts.clone(),
        })),
        Asker::Askpass(program) => {
            tracing::debug!(program = %program.display(), "prompts go to SSH_ASKPASS");
            Some(Arc::new(Askpass { program }))
        }
        Asker::Nobody => None,
    };
    let sources = Sources {
        agent_socket: agent_socket(&cfg.identity_agent, |name| std::env::var_os(name)),
        home: home_dir(),
    };
    let mut attempt = Attempt::new(handle, cfg, prompter, sources);
    attempt.askpass_hint = !cfg.batch_mode;
    attempt.run().await
}

/// The environment variables OpenSSH consults before running SSH_ASKPASS;
/// read once, and injected so tests need not touch the environment.
#[derive(Debug, Default, Clone)]
struct AskpassEnv {
    /// SSH_ASKPASS; an empty value counts as unset.
    program: Option<OsString>,
    /// SSH_ASKPASS_REQUIRE.
    require: Option<OsString>,
    /// DISPLAY or WAYLAND_DISPLAY is set and not empty.
    display: bool,
}

impl AskpassEnv {
    fn from_process() -> Self {
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        AskpassEnv {
            program: set("SSH_ASKPASS"),
            require: std::env::var_os("SSH_ASKPASS_REQUIRE"),
            display: set("DISPLAY").is_some() || set("WAYLAND_DISPLAY").is_some(),
        }
    }
}

/// Who answers prompts during authentication.
#[derive(Debug, PartialEq, Eq)]
enum Asker {
    Terminal,
    Askpass(PathBuf),
    /// Nothing can ask: encrypted keys and password methods are skipped.
    Nobody,
}

/// OpenSSH's read_passphrase decision. A display is what makes an askpass
/// program usable, unless SSH_ASKPASS_REQUIRE is "force"; "prefer" picks it
/// over the terminal (still only with a display, as OpenSSH does), "never"
/// rules it out. Otherwise it is used only when there is no terminal.
/// Unlike OpenSSH there is no compiled-in default program: without
/// SSH_ASKPASS, nothing but the terminal asks.
fn choose_asker(terminal: bool, env: &AskpassEnv) -> Asker {
    let require = env
        .require
        .as_ref()
        .map(|v| v.to_string_lossy().to_ascii_lowercase());
    let (allowed, preferred) = match require.as_deref() {
        Some("force") => (true, true),
        Some("prefer") => (env.display, env.display),
        Some("never") => (false, false),
        _ => (env.display, false),
    };
    match &env.program {
        Some(program) if allowed && (preferred || !terminal) => {
            Asker::Askpass(PathBuf::from(program))
        }
        _ if terminal => Asker::Terminal,
        _ => Asker::Nobody,
    }
}

/// Where keys come from; injected so tests need not touch the environment.
struct Sources {
    /// The ssh-agent's socket, or why there is none (for the message).
    agent_socket: Result<PathBuf, String>,
    home: Option<PathBuf>,
}

/// The agent socket `IdentityAgent` names: it replaces $SSH_AUTH_SOCK, as
/// in OpenSSH. `env` reads an environment variable.
fn agent_socket(
    setting: &IdentityAgent,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, String> {
    match setting {
        IdentityAgent::None => Err("no ssh-agent (IdentityAgent none)".to_string()),
        IdentityAgent::Socket(path) => Ok(path.clone()),
        IdentityAgent::Environment(name) => env(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| format!("no ssh-agent ({name} is not set)")),
    }
}

/// Asks the user for secrets and answers. Blocking; called off the runtime.
trait Prompter: Send + Sync {
    /// Reads without echo (passwords, passphrases).
    fn secret(&self, prompt: &str) -> io::Result<String>;
    /// Reads a visible line (keyboard-interactive prompts with echo on).
    fn line(&self, prompt: &str) -> io::Result<String>;
    /// The program that asks, if not the terminal, for error messages.
    fn program(&self) -> Option<&Path> {
        None
    }
    /// Shows the server's text that comes before its prompts.
    fn show(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// Asks on the terminal, with the screen cleared of progress meanwhile.
struct Terminal {
    prompts: PromptGuard,
}

impl Prompter for Terminal {
    fn secret(&self, prompt: &str) -> io::Result<String> {
        self.prompts.hold(|| rpassword::prompt_password(prompt))
    }

    fn line(&self, prompt: &str) -> io::Result<String> {
        self.prompts.hold(|| {
            eprint!("{prompt}");
            io::stderr().flush()?;
            let mut answer = String::new();
            io::stdin().lock().read_line(&mut answer)?;
            Ok(answer.trim_end_matches(['\r', '\n']).to_string())
        })
    }

    fn show(&self, text: &str) {
        self.prompts.hold(|| eprintln!("{text}"));
    }
}

/// An SSH_ASKPASS program, run as OpenSSH runs it: the prompt is its only
/// argument, the answer the first line of its stdout.
struct Askpass {
    program: PathBuf,
}

impl Askpass {
    fn ask(&self, prompt: &str) -> io::Result<String> {
        // Only the fact and the program are logged: the prompt is harmless
        // but the answer is the secret.
        tracing::debug!(program = %self.program.display(), "asking with SSH_ASKPASS");
        let output = Command::new(&self.program)
            .arg(prompt)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()?;
        if !output.status.success() {
            // OpenSSH's convention for "cancel": the caller sees an empty
            // answer, which skips a key just like an empty terminal answer.
            tracing::debug!(status = %output.status, "SSH_ASKPASS program cancelled");
            return Ok(String::new());
        }
        let mut answer = output.stdout;
        // OpenSSH keeps what comes before the first line break.
        if let Some(end) = answer.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            answer.truncate(end);
        }
        // The error would carry the bytes, so it is dropped unread.
        String::from_utf8(answer)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "its answer is not UTF-8"))
    }
}

impl Prompter for Askpass {
    fn secret(&self, prompt: &str) -> io::Result<String> {
        self.ask(prompt)
    }

    // Askpass programs have no echo switch; OpenSSH asks visible prompts the
    // same way.
    fn line(&self, prompt: &str) -> io::Result<String> {
        self.ask(prompt)
    }

    fn program(&self) -> Option<&Path> {
        Some(&self.program)
    }
}

/// Ends a failure message when a prompt was wanted and nothing could ask.
const ASKPASS_HINT: &str = "without a terminal, an SSH_ASKPASS program can ask \
    (with DISPLAY set, or SSH_ASKPASS_REQUIRE=force)";
/// OpenSSH's NumberOfPasswordPrompts default.
const PROMPT_TRIES: usize = 3;
/// Guards against a server that keeps sending keyboard-interactive rounds.
const MAX_INFO_ROUNDS: usize = 16;
const DEFAULT_KEYS: &[&str] = &["id_ed25519", "id_ecdsa", "id_rsa"];

/// State of one authentication run.
struct Attempt<'a, H: Handler> {
    handle: &'a mut Handle<H>,
    cfg: &'a HostConfig,
    prompter: Option<Arc<dyn Prompter>>,
    sources: Sources,
    /// The identity files to try, and why there are none if so.
    files: (Vec<PathBuf>, Option<String>),
    /// What the server last said it accepts; `None` until it has said.
    methods: Option<MethodSet>,
    /// Public keys already offered and rejected, so files do not repeat them.
    offered: Vec<PublicKey>,
    /// Cached answer of `best_supported_rsa_hash` (it may wait up to 1 s).
    rsa_hash: Option<Option<HashAlg>>,
    tried: Vec<String>,
    skipped: Vec<String>,
    /// Whether a failure that wanted a prompt may suggest SSH_ASKPASS (not
    /// under BatchMode, where nothing may ask).
    askpass_hint: bool,
    /// Something needed a prompt and nothing could ask.
    unasked: bool,
}

impl<'a, H: Handler> Attempt<'a, H> {
    fn new(
        handle: &'a mut Handle<H>,
        cfg: &'a HostConfig,
        prompter: Option<Arc<dyn Prompter>>,
        sources: Sources,
    ) -> Self {
        let files = identity_files(cfg, sources.home.as_deref());
        Attempt {
            handle,
            cfg,
            prompter,
            sources,
            files,
            methods: None,
            offered: Vec::new(),
            rsa_hash: None,
            tried: Vec::new(),
            skipped: Vec::new(),
            askpass_hint: false,
            unasked: false,
        }
    }

    async fn run(mut self) -> Result<(), AuthError> {
        if self.try_agent().await?
            || self.try_identity_files().await?
            || self.try_none().await?
            || self.try_interactive().await?
        {
            return Ok(());
        }
        if self.unasked && self.askpass_hint {
            self.skipped.push(ASKPASS_HINT.to_string());
        }
        Err(AuthError::Failed {
            user: self.cfg.user.clone(),
            host: self.cfg.host_name.clone(),
            tried: self.tried,
            skipped: self.skipped,
        })
    }

    /// "none", for servers that accept it and to learn which methods are
    /// worth a prompt, when no key was offered. OpenSSH starts with it; ferry
    /// offers its keys first, since the first refusal lists the methods just
    /// the same, and a key that works saves the round trip.
    async fn try_none(&mut self) -> Result<bool, AuthError> {
        if self.methods.is_some() {
            return Ok(false);
        }
        let result = self.handle.authenticate_none(self.cfg.user.as_str()).await;
        let result = result.map_err(|e| self.ssh_error(e))?;
        self.outcome(result)
    }

    /// Records a server reply; `Ok(true)` means authenticated.
    fn outcome(&mut self, result: AuthResult) -> Result<bool, AuthError> {
        match result {
            AuthResult::Success => Ok(true),
            // russh reports a dropped connection as a failure with no methods.
            AuthResult::Failure { .. } if self.handle.is_closed() => Err(AuthError::Disconnected {
                host: self.cfg.host_name.clone(),
                tried: self.tried.clone(),
            }),
            AuthResult::Failure {
                remaining_methods,
                partial_success,
            } => {
                tracing::debug!(
                    ?remaining_methods,
                    partial_success,
                    "authentication step refused"
                );
                self.methods = Some(remaining_methods);
                Ok(false)
            }
        }
    }

    fn allows(&self, method: MethodKind) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(&method))
    }

    fn ssh_error(&self, source: russh::Error) -> AuthError {
        AuthError::Ssh {
            host: self.cfg.host_name.clone(),
            source,
        }
    }

    /// The hash to sign with for `key`: only RSA keys need one.
    async fn hash_for(&mut self, key: &PublicKey) -> Result<Option<HashAlg>, AuthError> {
        if !key.algorithm().is_rsa() {
            return Ok(None);
        }
        if let Some(hash) = self.rsa_hash {
            return Ok(hash);
        }
        let best = self.handle.best_supported_rsa_hash().await;
        // Outer None: the server sent no server-sig-algs, so use ssh-rsa (SHA-1).
        let hash = best.map_err(|e| self.ssh_error(e))?.flatten();
        self.rsa_hash = Some(hash);
        Ok(hash)
    }

    // ---- ssh-agent ----

    async fn try_agent(&mut self) -> Result<bool, AuthError> {
        if !self.allows(MethodKind::PublicKey) {
            return Ok(false);
        }
        let Some(mut agent) = self.connect_agent().await else {
            return Ok(false);
        };
        let Some(identities) = self.agent_identities(&mut agent).await else {
            return Ok(false);
        };
        let (usable, filtered) = self.filter_identities_only(identities);
        let mut count = 0;
        for identity in usable {
            if !self.allows(MethodKind::PublicKey) {
                break;
            }
            count += 1;
            if self.try_agent_identity(&mut agent, identity).await? {
                return Ok(true);
            }
        }
        self.note_agent(count, filtered);
        Ok(false)
    }

    async fn connect_agent(&mut self) -> Option<AgentClient<tokio::net::UnixStream>> {
        let socket = match &self.sources.agent_socket {
            Ok(socket) => socket.clone(),
            Err(why) => {
                self.skipped.push(why.clone());
                return None;
            }
        };
        let mut agent = match AgentClient::connect_uds(&socket).await {
            Ok(agent) => agent,
            Err(e) => {
                let socket = socket.display();
                self.skipped
                    .push(format!("ssh-agent unreachable at {socket} ({e})"));
                return None;
            }
        };
        // OpenSSH binds the agent to this session so destination-constrained
        // keys work; agents without the extension just refuse, which is fine.
        if let Some(binding) = self.handle.agent_session_binding() {
            if let Err(e) = agent.bind_session(binding, false).await {
                tracing::debug!(error = %e, "ssh-agent did not accept session-bind");
            }
        }
        Some(agent)
    }

    async fn agent_identities(
        &mut self,
        agent: &mut AgentClient<tokio::net::UnixStream>,
    ) -> Option<Vec<AgentIdentity>> {
        match agent.request_identities().await {
            Ok(ids) if ids.is_empty() => {
                self.skipped.push("ssh-agent holds no keys".to_string());
                None
            }
            Ok(ids) => Some(ids),
            Err(e) => {
                self.skipped
                    .push(format!("ssh-agent did not list its keys ({e})"));
                None
            }
        }
    }

    /// With IdentitiesOnly, only agent keys matching an identity file count.
    fn filter_identities_only(&self, ids: Vec<AgentIdentity>) -> (Vec<AgentIdentity>, usize) {
        if !self.cfg.identities_only {
            return (ids, 0);
        }
        let allowed: Vec<PublicKey> = self
            .files
            .0
            .iter()
            .filter_map(|p| file_public_key(p))
            .collect();
        let total = ids.len();
        let usable: Vec<AgentIdentity> = ids
            .into_iter()
            .filter(|id| allowed.iter().any(|k| same_key(k, &id.public_key())))
            .collect();
        let filtered = total - usable.len();
        (usable, filtered)
    }

    async fn try_agent_identity(
        &mut self,
        agent: &mut AgentClient<tokio::net::UnixStream>,
        identity: AgentIdentity,
    ) -> Result<bool, AuthError> {
        let public = identity.public_key().into_owned();
        let hash = self.hash_for(&public).await?;
        let user = self.cfg.user.clone();
        let result = match identity {
            AgentIdentity::PublicKey { key, .. } => {
                self.handle
                    .authenticate_publickey_with(user, key, hash, agent)
                    .await
            }
            AgentIdentity::Certificate { certificate, .. } => {
                self.handle
                    .authenticate_certificate_with(user, certificate, hash, agent)
                    .await
            }
        };
        self.offered.push(public);
        match result {
            Ok(result) => self.outcome(result),
            Err(AgentAuthError::Send(_)) => Err(AuthError::Disconnected {
                host: self.cfg.host_name.clone(),
                tried: self.tried.clone(),
            }),
            // The agent declined to sign (locked, confirmation refused, ...).
            Err(AgentAuthError::Key(e)) => {
                tracing::debug!(error = %e, "ssh-agent could not sign");
                Ok(false)
            }
        }
    }

    fn note_agent(&mut self, count: usize, filtered: usize) {
        let (keys, skipped) = (plural(count), plural(filtered));
        let note = match (count, filtered) {
            (0, 0) => return,
            (0, _) => {
                let why = "IdentitiesOnly, not among the IdentityFile keys";
                self.skipped.push(format!(
                    "ssh-agent's {filtered} key{skipped} skipped ({why})"
                ));
                return;
            }
            (_, 0) => format!("ssh-agent ({count} key{keys})"),
            _ => {
                format!("ssh-agent ({count} key{keys}, {filtered} more skipped by IdentitiesOnly)")
            }
        };
        self.tried.push(note);
    }

    // ---- identity files ----

    async fn try_identity_files(&mut self) -> Result<bool, AuthError> {
        if !self.allows(MethodKind::PublicKey) {
            self.skipped
                .push("the server does not accept public keys".to_string());
            return Ok(false);
        }
        if let Some(note) = self.files.1.take() {
            self.skipped.push(note);
        }
        for path in self.files.0.clone() {
            if !self.allows(MethodKind::PublicKey) {
                break;
            }
            if self.try_identity_file(&path).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn try_identity_file(&mut self, path: &Path) -> Result<bool, AuthError> {
        let shown = path.display().to_string();
        if let Some(public) = file_public_key(path) {
            if self.offered.iter().any(|k| same_key(k, &public)) {
                self.tried
                    .push(format!("{shown} (rejected when offered by ssh-agent)"));
                return Ok(false);
            }
        }
        let Some(key) = self.load_key(path).await? else {
            return Ok(false);
        };
        let public = key.public_key().clone();
        let hash = self.hash_for(&public).await?;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        let result = self
            .handle
            .authenticate_publickey(self.cfg.user.as_str(), key)
            .await;
        let accepted = self.outcome(result.map_err(|e| self.ssh_error(e))?)?;
        if !accepted {
            self.offered.push(public);
            self.tried.push(format!("{shown} (rejected)"));
        }
        Ok(accepted)
    }

    /// Loads a private key, asking for its passphrase when it is encrypted
    /// and there is a terminal. `None` (with a note) when it cannot be used.
    async fn load_key(&mut self, path: &Path) -> Result<Option<PrivateKey>, AuthError> {
        let shown = path.display().to_string();
        match russh::keys::load_secret_key(path, None) {
            Ok(key) => Ok(Some(key)),
            Err(russh::keys::Error::KeyIsEncrypted) => self.unlock_key(path).await,
            Err(russh::keys::Error::IO(e)) if e.kind() == io::ErrorKind::NotFound => {
                self.tried.push(format!("{shown} (not found)"));
                Ok(None)
            }
            Err(e) => {
                self.tried.push(format!("{shown} (unusable: {e})"));
                Ok(None)
            }
        }
    }

    async fn unlock_key(&mut self, path: &Path) -> Result<Option<PrivateKey>, AuthError> {
        let shown = path.display().to_string();
        if self.prompter.is_none() {
            self.tried.push(format!(
                "{shown} (encrypted, no terminal to ask for the passphrase)"
            ));
            self.unasked = true;
            return Ok(None);
        }
        for attempt in 0..PROMPT_TRIES {
            if attempt > 0 {
                eprintln!("Bad passphrase, try again for {shown}");
            }
            let passphrase = self
                .ask(format!("Enter passphrase for key '{shown}': "), false)
                .await?;
            // OpenSSH: an empty answer means "skip this key".
            if passphrase.is_empty() {
                self.tried.push(format!("{shown} (no passphrase given)"));
                return Ok(None);
            }
            if let Ok(key) = russh::keys::load_secret_key(path, Some(&passphrase)) {
                return Ok(Some(key));
            }
        }
        self.tried.push(format!("{shown} (wrong passphrase)"));
        Ok(None)
    }

    // ---- keyboard-interactive and password ----

    async fn try_interactive(&mut self) -> Result<bool, AuthError> {
        let offered = self.interactive_methods_offered();
        if self.prompter.is_none() {
            if !offered.is_empty() {
                let verb = if offered.len() == 1 { "needs" } else { "need" };
                self.skipped
                    .push(format!("{} {verb} a terminal", offered.join(" and ")));
                self.unasked = true;
            }
            return Ok(false);
        }
        if self.allows(MethodKind::KeyboardInteractive) && self.try_keyboard_interactive().await? {
            return Ok(true);
        }
        Ok(self.allows(MethodKind::Password) && self.try_password().await?)
    }

    fn interactive_methods_offered(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.allows(MethodKind::Password) {
            names.push("password");
        }
        if self.allows(MethodKind::KeyboardInteractive) {
            names.push("keyboard-interactive");
        }
        names
    }

    async fn try_keyboard_interactive(&mut self) -> Result<bool, AuthError> {
        let mut rounds = 0;
        while rounds < PROMPT_TRIES && self.allows(MethodKind::KeyboardInteractive) {
            rounds += 1;
            if self.keyboard_interactive_once().await? {
                return Ok(true);
            }
        }
        self.tried.push(format!(
            "keyboard-interactive ({rounds} attempt{})",
            plural(rounds)
        ));
        Ok(false)
    }

    /// One keyboard-interactive exchange, answering every info request.
    async fn keyboard_interactive_once(&mut self) -> Result<bool, AuthError> {
        let user = self.cfg.user.clone();
        let start = self
            .handle
            .authenticate_keyboard_interactive_start(user, None)
            .await;
        let mut reply = start.map_err(|e| self.ssh_error(e))?;
        for _ in 0..MAX_INFO_ROUNDS {
            let (name, instructions, prompts) = match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                KeyboardInteractiveAuthResponse::Failure {
                    remaining_methods,
                    partial_success,
                } => {
                    let result = AuthResult::Failure {
                        remaining_methods,
                        partial_success,
                    };
                    return self.outcome(result);
                }
                KeyboardInteractiveAuthResponse::InfoRequest {
                    name,
                    instructions,
                    prompts,
                } => (name, instructions, prompts),
            };
            let answers = self.answer_prompts(&name, &instructions, prompts).await?;
            let next = self
                .handle
                .authenticate_keyboard_interactive_respond(answers)
                .await;
            reply = next.map_err(|e| self.ssh_error(e))?;
        }
        Ok(false)
    }

    async fn answer_prompts(
        &self,
        name: &str,
        instructions: &str,
        prompts: Vec<Prompt>,
    ) -> Result<Vec<String>, AuthError> {
        // Server-supplied text, shown as OpenSSH does before the prompts.
        for text in [name, instructions] {
            if let (false, Some(prompter)) = (text.is_empty(), &self.prompter) {
                prompter.show(text);
            }
        }
        let mut answers = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            answers.push(self.ask(prompt.prompt, prompt.echo).await?);
        }
        Ok(answers)
    }

    async fn try_password(&mut self) -> Result<bool, AuthError> {
        let prompt = format!("{}@{}'s password: ", self.cfg.user, self.cfg.host_name);
        let mut tries = 0;
        while tries < PROMPT_TRIES && self.allows(MethodKind::Password) {
            tries += 1;
            let password = self.ask(prompt.clone(), false).await?;
            let user = self.cfg.user.as_str();
            let result = self.handle.authenticate_password(user, password).await;
            if self.outcome(result.map_err(|e| self.ssh_error(e))?)? {
                return Ok(true);
            }
            eprintln!("Permission denied, please try again.");
        }
        self.tried
            .push(format!("password ({tries} attempt{})", plural(tries)));
        Ok(false)
    }

    /// Runs the blocking prompt off the async runtime so the connection keeps
    /// being serviced while the user types.
    async fn ask(&self, prompt: String, echo: bool) -> Result<String, AuthError> {
        let Some(prompter) = self.prompter.clone() else {
            return Err(self.terminal_error(io::ErrorKind::NotConnected.into()));
        };
        let answer = tokio::task::spawn_blocking(move || {
            if echo {
                prompter.line(&prompt)
            } else {
                prompter.secret(&prompt)
            }
        })
        .await;
        let source = match answer {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => e,
            Err(join) => io::Error::other(join.to_string()),
        };
        Err(match self.prompter.as_ref().and_then(|p| p.program()) {
            Some(program) => AuthError::Askpass {
                host: self.cfg.host_name.clone(),
                program: program.display().to_string(),
                source,
            },
            None => self.terminal_error(source),
        })
    }

    fn terminal_error(&self, source: io::Error) -> AuthError {
        AuthError::Terminal {
            host: self.cfg.host_name.clone(),
            source,
        }
    }
}

/// The configured identity files, or else those of OpenSSH's defaults that
/// exist, plus a note for the failure message when there are none.
fn identity_files(cfg: &HostConfig, home: Option<&Path>) -> (Vec<PathBuf>, Option<String>) {
    if !cfg.identity_files.is_empty() {
        return (cfg.identity_files.clone(), None);
    }
    let Some(ssh_dir) = home.map(|h| h.join(".ssh")) else {
        let note = "no home directory to look for default keys in".to_string();
        return (Vec::new(), Some(note));
    };
    let found: Vec<PathBuf> = DEFAULT_KEYS
        .iter()
        .map(|name| ssh_dir.join(name))
        .filter(|p| p.exists())
        .collect();
    let note = found.is_empty().then(|| {
        let names = DEFAULT_KEYS.join(", ");
        format!(
            "no identity file ({names} in {} do not exist)",
            ssh_dir.display()
        )
    });
    (found, note)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// The public half of an identity file without needing its passphrase:
/// `FILE.pub` if present, else the unencrypted header of an OpenSSH key.
fn file_public_key(path: &Path) -> Option<PublicKey> {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    if let Ok(key) = russh::keys::load_public_key(PathBuf::from(pub_path)) {
        return Some(key);
    }
    let text = std::fs::read_to_string(path).ok()?;
    let key = PrivateKey::from_openssh(text).ok()?;
    Some(key.public_key().clone())
}

#[cfg(test)]
mod tests {
    //! Authentication's choices and messages, and keyboard-interactive and
    //! password against an in-process server (sshd cannot check passwords
    //! here without PAM). Keys, identity files and the ssh-agent against a
    //! real sshd are integration tests: tests/auth.rs, tests/secrets.rs.
    use super::*;
    use crate::ssh::config::StrictHostKeyChecking;
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use russh::keys::PublicKeyOrCertificate;
    use std::collections::VecDeque;
    use std::fs;
    use std::sync::Mutex;
    use std::time::Duration;

    const TIMEOUT: Duration = Duration::from_secs(30);

    /// Runs `test` under the 30 s limit every test here gets.
    async fn within_timeout<F: std::future::Future<Output = ()>>(test: F) {
        tokio::time::timeout(TIMEOUT, test)
            .await
            .expect("test timed out");
    }

    /// Hands out canned answers and remembers the prompts it saw.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<VecDeque<String>>,
        prompts: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(answers: &[&str]) -> Arc<Self> {
            let answers = answers.iter().map(|a| a.to_string()).collect();
            Arc::new(Scripted {
                answers: Mutex::new(answers),
                prompts: Mutex::default(),
            })
        }

        fn prompts(&self) -> Vec<String> {
            self.prompts.lock().expect("lock").clone()
        }
    }

    impl Prompter for Scripted {
        fn secret(&self, prompt: &str) -> io::Result<String> {
            self.prompts.lock().expect("lock").push(prompt.to_string());
            let next = self.answers.lock().expect("lock").pop_front();
            next.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no more answers"))
        }

        fn line(&self, prompt: &str) -> io::Result<String> {
            self.secret(prompt)
        }
    }

    fn no_agent(home: Option<PathBuf>) -> Sources {
        let unset = IdentityAgent::Environment("SSH_AUTH_SOCK".into());
        Sources {
            agent_socket: agent_socket(&unset, |_| None),
            home,
        }
    }

    #[test]
    fn identity_agent_replaces_ssh_auth_sock() {
        let env = |name: &str| (name == "OTHER_SOCK").then(|| OsString::from("/run/other.sock"));
        let from = |setting: IdentityAgent| agent_socket(&setting, env);
        assert_eq!(
            from(IdentityAgent::Environment("OTHER_SOCK".into())),
            Ok(PathBuf::from("/run/other.sock"))
        );
        assert_eq!(
            from(IdentityAgent::Environment("SSH_AUTH_SOCK".into())),
            Err("no ssh-agent (SSH_AUTH_SOCK is not set)".to_string())
        );
        assert_eq!(
            from(IdentityAgent::Socket(PathBuf::from("/s"))),
            Ok(PathBuf::from("/s"))
        );
        assert_eq!(
            from(IdentityAgent::None),
            Err("no ssh-agent (IdentityAgent none)".to_string())
        );
    }

    /// An in-process russh server offering only keyboard-interactive
    /// (prompts "Code: " visible and "PIN: " hidden, answers 42/1234) and
    /// password ("hunter2"); sshd here cannot check passwords without PAM.
    struct PromptServer;

    impl russh::server::Handler for PromptServer {
        type Error = russh::Error;

        async fn auth_password(
            &mut self,
            _user: &str,
            password: &str,
        ) -> Result<russh::server::Auth, Self::Error> {
            if password == "hunter2" {
                return Ok(russh::server::Auth::Accept);
            }
            // russh's server drops "password" after one failure unless told
            // otherwise; OpenSSH keeps offering it, which is what we test.
            let methods = [MethodKind::KeyboardInteractive, MethodKind::Password];
            Ok(russh::server::Auth::Reject {
                proceed_with_methods: Some(MethodSet::from(&methods[..])),
                partial_success: false,
            })
        }

        async fn auth_keyboard_interactive<'a>(
            &'a mut self,
            _user: &str,
            _submethods: &str,
            response: Option<russh::server::Response<'a>>,
        ) -> Result<russh::server::Auth, Self::Error> {
            let Some(response) = response else {
                let prompts = vec![("Code: ".into(), true), ("PIN: ".into(), false)];
                return Ok(russh::server::Auth::Partial {
                    name: "".into(),
                    instructions: "".into(),
                    prompts: prompts.into(),
                });
            };
            let answers: Vec<bytes::Bytes> = response.collect();
            Ok(if answers == [&b"42"[..], &b"1234"[..]] {
                russh::server::Auth::Accept
            } else {
                russh::server::Auth::reject()
            })
        }
    }

    struct AcceptAny;

    impl Handler for AcceptAny {
        type Error = russh::Error;

        async fn check_server_key(
            &mut self,
            _key: &PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(true)
        }
    }

    /// Runs the authentication against [`PromptServer`] over an in-memory pipe.
    async fn run_prompt_server(prompter: Option<Arc<dyn Prompter>>) -> Result<(), AuthError> {
        run_prompt_server_with(prompter, false).await
    }

    async fn run_prompt_server_with(
        prompter: Option<Arc<dyn Prompter>>,
        askpass_hint: bool,
    ) -> Result<(), AuthError> {
        // A fixed key: the client accepts any, and no tool need make one.
        let host_key = PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]));
        let methods = [MethodKind::KeyboardInteractive, MethodKind::Password];
        let server_config = russh::server::Config {
            keys: vec![host_key],
            methods: MethodSet::from(&methods[..]),
            auth_rejection_time: Duration::from_millis(1),
            auth_rejection_time_initial: Some(Duration::ZERO),
            ..Default::default()
        };
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(russh::server::run_stream(
            Arc::new(server_config),
            server_io,
            PromptServer,
        ));
        let client_config = Arc::new(russh::client::Config::default());
        let mut handle = russh::client::connect_stream(client_config, client_io, AcceptAny)
            .await
            .expect("connect in memory");
        let mut cfg = HostConfig {
            host_name: "prompt.test".to_string(),
            user: "alice".to_string(),
            ..host_config_for_port(22)
        };
        cfg.identity_files.clear();
        let mut attempt = Attempt::new(&mut handle, &cfg, prompter, no_agent(None));
        attempt.askpass_hint = askpass_hint;
        let result = attempt.run().await;
        server.abort();
        result
    }

    fn host_config_for_port(port: u16) -> HostConfig {
        HostConfig {
            strict_host_key_checking: StrictHostKeyChecking::Yes,
            ..HostConfig::new("testhost", "127.0.0.1", port, "nobody")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyboard_interactive_answers_each_prompt() {
        within_timeout(async {
            let prompter = Scripted::new(&["42", "1234"]);
            run_prompt_server(Some(prompter.clone()))
                .await
                .expect("authenticate");
            assert_eq!(prompter.prompts(), vec!["Code: ", "PIN: "]);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_after_failed_keyboard_interactive() {
        within_timeout(async {
            let wrong = ["x1", "x2", "x3", "x4", "x5", "x6"];
            let answers: Vec<&str> = wrong.iter().copied().chain(["bad-pw", "hunter2"]).collect();
            let prompter = Scripted::new(&answers);
            run_prompt_server(Some(prompter.clone()))
                .await
                .expect("authenticate");
            let prompts = prompter.prompts();
            assert_eq!(prompts.len(), 8, "{prompts:?}");
            assert_eq!(prompts[6], "alice@prompt.test's password: ");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interactive_methods_without_terminal_are_explained() {
        within_timeout(async {
            let err = run_prompt_server(None).await.expect_err("must fail");
            assert_eq!(
                err.to_string(),
                "permission denied for alice@prompt.test: nothing could be tried; \
                 no ssh-agent (SSH_AUTH_SOCK is not set); \
                 no home directory to look for default keys in; \
                 password and keyboard-interactive need a terminal"
            );
            // Outside BatchMode the message says how to ask without one.
            let err = run_prompt_server_with(None, true)
                .await
                .expect_err("must fail");
            assert!(
                err.to_string()
                    .ends_with(&format!("need a terminal; {ASKPASS_HINT}")),
                "{err}"
            );
        })
        .await;
    }

    fn askpass_env(program: Option<&str>, require: Option<&str>, display: bool) -> AskpassEnv {
        AskpassEnv {
            program: program.map(OsString::from),
            require: require.map(OsString::from),
            display,
        }
    }

    #[test]
    fn askpass_is_chosen_as_openssh_chooses_it() {
        let askpass = || Asker::Askpass(PathBuf::from("/bin/ask"));
        let (set, unset) = (Some("/bin/ask"), None);
        let tty = true;
        let cases = [
            // (terminal, SSH_ASKPASS, SSH_ASKPASS_REQUIRE, display, expected)
            (tty, unset, None, true, Asker::Terminal),
            (false, unset, None, true, Asker::Nobody),
            (false, unset, Some("force"), true, Asker::Nobody),
            // Unset: only without a terminal, and only with a display.
            (tty, set, None, true, Asker::Terminal),
            (false, set, None, true, askpass()),
            (false, set, None, false, Asker::Nobody),
            (false, set, Some("bogus"), true, askpass()),
            // prefer: over the terminal, but still only with a display.
            (tty, set, Some("prefer"), true, askpass()),
            (tty, set, Some("prefer"), false, Asker::Terminal),
            (false, set, Some("prefer"), false, Asker::Nobody),
            // force: always, display or not, and case does not matter.
            (tty, set, Some("force"), false, askpass()),
            (false, set, Some("FORCE"), false, askpass()),
            // never: the terminal or nothing.
            (tty, set, Some("never"), true, Asker::Terminal),
            (false, set, Some("Never"), true, Asker::Nobody),
        ];
        for (terminal, program, require, display, expected) in cases {
            let env = askpass_env(program, require, display);
            assert_eq!(
                choose_asker(terminal, &env),
                expected,
                "terminal {terminal}, {env:?}"
            );
        }
    }

    /// Writes an executable shell script `name` into `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    #[test]
    fn askpass_program_gets_the_prompt_and_gives_the_answer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let seen = dir.path().join("seen");
        // Records its arguments one per line and whether stdin is empty.
        let answers = script(
            dir.path(),
            "answers",
            &format!(
                "printf '%s\\n' \"$#\" \"$1\" > '{seen}'\n\
                 if [ -n \"$(cat)\" ]; then echo stdin-not-null >> '{seen}'; fi\n\
                 printf 'pass phrase\\r\\nsecond line\\n'\n",
                seen = seen.display()
            ),
        );
        let prompter = Askpass { program: answers };
        let prompt = "Enter passphrase for key '/k/it's here': ";
        assert_eq!(prompter.secret(prompt).expect("ask"), "pass phrase");
        let recorded = fs::read_to_string(&seen).expect("read seen");
        assert_eq!(recorded, format!("1\n{prompt}\n"));

        let cancels = script(dir.path(), "cancels", "echo ignored\nexit 1\n");
        let prompter = Askpass { program: cancels };
        assert_eq!(prompter.line("Code: ").expect("ask"), "");

        let missing = dir.path().join("missing");
        let prompter = Askpass { program: missing };
        assert!(prompter.secret("x").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn askpass_that_cannot_run_is_named_in_the_error() {
        within_timeout(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let program = dir.path().join("no-such-askpass");
            let prompter: Arc<dyn Prompter> = Arc::new(Askpass {
                program: program.clone(),
            });
            let err = run_prompt_server(Some(prompter))
                .await
                .expect_err("must fail");
            assert!(matches!(err, AuthError::Askpass { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains(&program.display().to_string()) && text.contains("SSH_ASKPASS"),
                "{text}"
            );
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn askpass_answers_keyboard_interactive() {
        within_timeout(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let program = script(
                dir.path(),
                "ask",
                "case \"$1\" in Code*) echo 42 ;; PIN*) echo 1234 ;; *) exit 1 ;; esac\n",
            );
            let prompter: Arc<dyn Prompter> = Arc::new(Askpass { program });
            run_prompt_server(Some(prompter))
                .await
                .expect("authenticate");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_passwords_never_leak_into_the_error() {
        within_timeout(async {
            let answers = [
                "k1", "k2", "k3", "k4", "k5", "k6", "pw-one", "pw-two", "pw-three",
            ];
            let prompter: Arc<dyn Prompter> = Scripted::new(&answers);
            let err = run_prompt_server(Some(prompter))
                .await
                .expect_err("must fail");
            let text = format!("{err} {err:?}");
            assert!(
                text.contains("keyboard-interactive (3 attempts), password (3 attempts)"),
                "{text}"
            );
            assert!(!text.contains("pw-") && !text.contains("hunter2"), "{text}");
        })
        .await;
    }

    #[test]
    fn failure_message_format() {
        let err = AuthError::Failed {
            user: "deploy".to_string(),
            host: "example.com".to_string(),
            tried: vec![
                "ssh-agent (2 keys)".to_string(),
                "/home/u/.ssh/id_ed25519 (rejected)".to_string(),
            ],
            skipped: vec!["password and keyboard-interactive need a terminal".to_string()],
        };
        assert_eq!(
            err.to_string(),
            "permission denied for deploy@example.com: tried ssh-agent (2 keys), \
             /home/u/.ssh/id_ed25519 (rejected); password and keyboard-interactive need a terminal"
        );
    }
}
