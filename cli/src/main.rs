//! `fotp`: the Flash OTP command line (CONTRACT.md section 6).

mod demo;
mod logging;
mod output;

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use fotp::{Client, ConfigBuilder, Error, ErrorKind, VerifyRequest};
use fotp_cli::sandbox;

use output::{exit_for, print_error, Out};

#[derive(Parser, Debug)]
#[command(
    name = "fotp",
    version,
    about = "Flash OTP: verify phone numbers by a mobile-originated SMS",
    long_about = "Flash OTP: verify phone numbers by a mobile-originated SMS.\n\n\
        Credentials and the base URL come from FOTP_BASE_URL, FOTP_APP_ID, FOTP_APP_SECRET (and \
        the other FOTP_* variables) or from the flags below, which win.\n\n\
        Exit status: 0 success; 1 a failed verification or an error answer (api, http status, \
        decode); 2 bad usage, invalid input or config; 3 network or time-out.\n\n\
        Try `fotp demo` for a tour that needs no configuration.",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Global {
    /// The platform's base URL [env: FOTP_BASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    base_url: Option<String>,
    /// Application id [env: FOTP_APP_ID]
    #[arg(long, global = true, value_name = "ID")]
    app_id: Option<String>,
    /// Application secret [env: FOTP_APP_SECRET]. On the command line it is visible to other
    /// users (process list) and kept in shell history: prefer the variable or --app-secret-file
    #[arg(long, global = true, value_name = "SECRET")]
    app_secret: Option<String>,
    /// Read the application secret from a file (`-`: standard input); one trailing newline is
    /// ignored
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        conflicts_with = "app_secret"
    )]
    app_secret_file: Option<PathBuf>,
    /// Print what the SDK does on stderr: -v each request, retry and pause; -vv also the
    /// details (wait polls, code reservations) [env: FOTP_LOG=off|error|warn|info|debug|trace]
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ask the platform for a verification link and code
    Verify(VerifyArgs),
    /// Pull the result of a verification once
    Query(QueryArgs),
    /// Poll until a verification has a final status (success or failed); shows a countdown
    /// on stderr when it is a terminal
    Wait(WaitArgs),
    /// Parse and check a callback body (push mode) from a file or stdin
    ParseCallback(ParseCallbackArgs),
    /// Run a local stand-in for the platform (for development and tests)
    Sandbox(SandboxArgs),
    /// A tour: sandbox, verify, simulated SMS, callback and query, all in-process
    Demo,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Template id (the FOTP ID of the Flash OTP template)
    #[arg(long, value_name = "ID")]
    ft_id: String,
    /// The code to send (4-6 digits; default: the platform picks one)
    #[arg(long, value_name = "CODE")]
    code: Option<String>,
    /// Validity in minutes (1-10; default: the platform's, 5)
    #[arg(long, value_name = "MINUTES")]
    validity: Option<u32>,
    /// Print one JSON object with the wire names (url, ftToken, messageId, code)
    #[arg(long)]
    json: bool,
    /// Draw the link as a QR code in the terminal (on stderr with --json)
    #[arg(long)]
    qr: bool,
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// The ftToken returned by verify
    token: String,
    /// Print one JSON object with the wire names (status, mobile, sender, ...)
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct WaitArgs {
    /// The ftToken returned by verify
    token: String,
    /// Give up after this many seconds (exit status 3)
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = parse_seconds)]
    timeout: Duration,
    /// Print one JSON object with the wire names
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ParseCallbackArgs {
    /// The file holding the callback body; `-` or nothing reads stdin
    file: Option<PathBuf>,
    /// Print one JSON object with the wire names
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SandboxArgs {
    /// Where to listen; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:8788", value_name = "HOST:PORT")]
    addr: SocketAddr,
    /// A template and its callback URL (repeatable; `FTID` alone: pull only).
    /// Template 2 always exists.
    #[arg(long = "template", value_name = "FTID=CALLBACK_URL")]
    templates: Vec<sandbox::Template>,
    /// The number the user's SMS is addressed to
    #[arg(long, default_value = sandbox::DEFAULT_SENDER, value_name = "NUMBER")]
    sender: String,
    /// Live sessions past which verify is refused (code 400001)
    #[arg(long, default_value_t = sandbox::DEFAULT_MAX_SESSIONS, value_name = "N")]
    max_sessions: usize,
    /// Attempts per callback delivery (at least 3)
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(3..=20))]
    callback_attempts: u32,
    /// Base URL put into redirect links, when phones reach the sandbox by another address
    /// (its host is accepted like --public-host)
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// A host name the sandbox answers to besides localhost and the address it is reached at,
    /// e.g. this machine's name on the LAN (repeatable). Requests naming other hosts get 403
    #[arg(long = "public-host", value_name = "NAME")]
    public_hosts: Vec<String>,
    /// Require this token on the dashboard and the /sandbox/* control paths (header
    /// `Authorization: Bearer TOKEN`; the dashboard also takes `/?controlToken=TOKEN`);
    /// for machines shared with other users
    #[arg(long, value_name = "TOKEN")]
    control_token: Option<String>,
    /// Read the control token from a file (`-`: standard input)
    #[arg(long, value_name = "PATH", conflicts_with = "control_token")]
    control_token_file: Option<PathBuf>,
    /// Nonces remembered within the replay window; past this, signed requests get 100004
    /// until some expire (at most 64 bytes each)
    #[arg(long, default_value_t = sandbox::DEFAULT_MAX_NONCES, value_name = "N")]
    max_nonces: usize,
    /// No log lines after the startup lines
    #[arg(long, short)]
    quiet: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err("the timeout must be more than 0 and at most 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(v))
}

fn main() -> ExitCode {
    let json_requested = std::env::args_os().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if json_requested && !matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or("bad usage");
                let msg = first.trim_start_matches("error: ").to_owned();
                print_error(&Error::new(ErrorKind::InvalidArgument, msg), true);
                return ExitCode::from(2);
            }
            e.exit();
        }
    };
    let env_level = std::env::var("FOTP_LOG").ok();
    match logging::level(cli.global.verbose, env_level.as_deref()) {
        Ok(level) => logging::install(level),
        Err(msg) => {
            print_error(&Error::new(ErrorKind::InvalidArgument, msg), json_requested);
            return ExitCode::from(2);
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err((e, json)) => {
            print_error(&e, json);
            ExitCode::from(exit_for(e.kind()))
        }
    }
}

type Outcome = Result<ExitCode, (Error, bool)>;

fn run(cli: Cli) -> Outcome {
    let g = cli.global;
    match cli.command {
        Command::Verify(a) => verify(&g, a),
        Command::Query(a) => {
            let out = Out::new(a.json);
            let client = client(&g).map_err(|e| (e, a.json))?;
            let r = client.query(&a.token).map_err(|e| (e, a.json))?;
            out.query_result(&r);
            Ok(status_exit(r.status, false))
        }
        Command::Wait(a) => wait(&g, a),
        Command::ParseCallback(a) => parse_callback(a),
        Command::Sandbox(a) => run_sandbox(&g, a).map_err(|e| (e, false)),
        Command::Demo => demo::run().map_err(|e| (e, false)),
    }
}

/// Exit status for a query result: 1 for failed (and an unknown status when final is
/// required), 0 otherwise.
fn status_exit(status: fotp::Status, wait: bool) -> ExitCode {
    match status {
        fotp::Status::Failed => ExitCode::from(1),
        fotp::Status::Unknown if wait => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads a secret (app secret, control token) from `path`, `-` being standard input: at
/// most 64 KiB of UTF-8, one trailing newline dropped, not empty. Errors name the path,
/// never the content.
fn read_secret_file(flag: &str, path: &std::path::Path) -> Result<String, Error> {
    const LIMIT: u64 = 64 * 1024;
    let stdin = path.as_os_str() == "-";
    let what = if stdin {
        "standard input".to_owned()
    } else {
        format!("{:?}", path.display().to_string())
    };
    let bad = |why: String| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{flag}: cannot use {what}: {why}"),
        )
    };
    let mut bytes = Vec::new();
    let read = if stdin {
        std::io::stdin()
            .lock()
            .take(LIMIT + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(LIMIT + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > LIMIT {
        return Err(bad("it is larger than 64 KiB".into()));
    }
    let mut text = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8".into()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(bad("it is empty".into()));
    }
    Ok(text)
}

/// A secret from `--NAME` (with a warning: argv is visible) or `--NAME-file`.
fn secret_arg(
    flag: &str,
    value: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<String>, Error> {
    if let Some(v) = value {
        eprintln!(
            "fotp: warning: {flag} shows the secret to other users of this machine (process \
             list) and keeps it in shell history; use {flag}-file PATH (or - for stdin) instead"
        );
        return Ok(Some(v.clone()));
    }
    match file {
        Some(p) => read_secret_file(&format!("{flag}-file"), p).map(Some),
        None => Ok(None),
    }
}

/// A client from the FOTP_* environment, with the flags winning.
fn client(g: &Global) -> Result<Client, Error> {
    let mut b = ConfigBuilder::from_env()?;
    if let Some(url) = &g.base_url {
        b = b.base_url(url);
    }
    let app_secret = secret_arg("--app-secret", &g.app_secret, &g.app_secret_file)?;
    if g.app_id.is_some() || app_secret.is_some() {
        let id = g
            .app_id
            .clone()
            .or_else(|| env("FOTP_APP_ID"))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    "the app secret needs an app id (--app-id or FOTP_APP_ID)",
                )
            })?;
        let secret = app_secret
            .or_else(|| env("FOTP_APP_SECRET"))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    "--app-id needs an app secret (FOTP_APP_SECRET or --app-secret-file)",
                )
            })?;
        b = b.hmac_auth(id, secret);
    }
    Client::new(b.user_agent_suffix("cli").build()?)
}

fn verify(g: &Global, a: VerifyArgs) -> Outcome {
    let json = a.json;
    let mut req = VerifyRequest::new(a.ft_id);
    req.code = a.code;
    req.validity_minutes = a.validity;
    // Input errors before config errors: the caller learns about both without a network call.
    req.validate().map_err(|e| (e, json))?;
    let client = client(g).map_err(|e| (e, json))?;
    let v = client.verify(&req).map_err(|e| (e, json))?;
    let out = Out::new(json);
    out.verification(&v);
    if a.qr {
        let qr = output::qr(&v.url).map_err(|e| (e, json))?;
        if json {
            eprint!("{qr}");
        } else {
            print!("{qr}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn wait(g: &Global, a: WaitArgs) -> Outcome {
    let json = a.json;
    fotp::__internals::ft_token(&a.token).map_err(|e| (e, json))?;
    let client = client(g).map_err(|e| (e, json))?;
    let result = if std::io::stderr().is_terminal() {
        wait_with_spinner(&client, &a.token, a.timeout)
    } else {
        client.wait(&a.token, a.timeout)
    };
    let r = result.map_err(|e| (e, json))?;
    Out::new(json).query_result(&r);
    Ok(status_exit(r.status, true))
}

/// Runs `wait` on a worker thread and draws a countdown on stderr until it answers.
fn wait_with_spinner(
    client: &Client,
    token: &str,
    timeout: Duration,
) -> fotp::Result<fotp::QueryResult> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (c, t) = (client.clone(), token.to_owned());
    std::thread::spawn(move || {
        let _ = tx.send(c.wait(&t, timeout));
    });
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let start = Instant::now();
    let mut err = std::io::stderr();
    let mut frame = 0;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => {
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
                return r;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let left = timeout
                    .saturating_sub(start.elapsed())
                    .as_millis()
                    .div_ceil(1000);
                let _ = write!(
                    err,
                    "\r\x1b[2K{} waiting for the user's SMS… {left} s left",
                    FRAMES[frame % FRAMES.len()]
                );
                let _ = err.flush();
                frame += 1;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = write!(err, "\r\x1b[2K");
                return Err(Error::new(
                    ErrorKind::Internal,
                    "the waiting thread stopped",
                ));
            }
        }
    }
}

fn parse_callback(a: ParseCallbackArgs) -> Outcome {
    let json = a.json;
    let limit = fotp::MAX_CALLBACK_BYTES as u64 + 1;
    let mut body = Vec::new();
    let read = match a.file.as_deref() {
        None => std::io::stdin().lock().take(limit).read_to_end(&mut body),
        Some(p) if p.as_os_str() == "-" => {
            std::io::stdin().lock().take(limit).read_to_end(&mut body)
        }
        Some(p) => std::fs::File::open(p).and_then(|f| f.take(limit).read_to_end(&mut body)),
    };
    read.map_err(|e| {
        let what = a
            .file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stdin".into());
        (
            Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot read {what}: {e}"),
            ),
            json,
        )
    })?;
    let cb = fotp::parse_callback(&body).map_err(|e| (e, json))?;
    Out::new(json).callback(&cb);
    Ok(ExitCode::SUCCESS)
}

fn run_sandbox(g: &Global, a: SandboxArgs) -> Result<ExitCode, Error> {
    let mut options = sandbox::Options {
        addr: a.addr,
        templates: a.templates,
        sender: a.sender,
        max_sessions: a.max_sessions,
        callback_attempts: a.callback_attempts,
        public_url: a.public_url,
        public_hosts: a.public_hosts,
        max_nonces: a.max_nonces,
        logger: if a.quiet {
            sandbox::Logger::none()
        } else {
            sandbox::Logger::stdout()
        },
        ..Default::default()
    };
    if let Some(id) = &g.app_id {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "--app-id must be visible ASCII",
            ));
        }
        options.app_id = id.clone();
    }
    let stdin_twice = [&g.app_secret_file, &a.control_token_file]
        .iter()
        .filter(|f| f.as_deref().is_some_and(|p| p.as_os_str() == "-"))
        .count()
        > 1;
    if stdin_twice {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "--app-secret-file and --control-token-file cannot both read standard input",
        ));
    }
    if let Some(secret) = secret_arg("--app-secret", &g.app_secret, &g.app_secret_file)? {
        if secret.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "--app-secret must not be empty",
            ));
        }
        options.app_secret = fotp::Secret::new(secret);
    }
    if let Some(token) = secret_arg("--control-token", &a.control_token, &a.control_token_file)? {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "--control-token must be visible ASCII (it travels in a header)",
            ));
        }
        options.control_token = Some(fotp::Secret::new(token));
    }
    for h in &options.public_hosts {
        sandbox::check_public_host(h)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("--public-host: {e}")))?;
    }
    if options.max_nonces == 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "--max-nonces must be at least 1",
        ));
    }
    if options.max_sessions == 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "--max-sessions must be at least 1",
        ));
    }
    if let Some(u) = &options.public_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "--public-url must start with http:// or https://",
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start the runtime: {e}"),
            )
        })?;
    runtime.block_on(async move {
        let app_id = options.app_id.clone();
        let secret = options.app_secret.clone();
        let logger = options.logger.clone();
        let templates = options.templates.clone();
        let sb = sandbox::Sandbox::start_until(options, shutdown_signal())
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Network,
                    format!("cannot listen on {}: {e}", a.addr),
                )
            })?;
        {
            // The first stdout lines: other tools read them to configure themselves.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "FOTP_BASE_URL={}", sb.base_url());
            let _ = writeln!(out, "FOTP_APP_ID={app_id}");
            let _ = writeln!(out, "FOTP_APP_SECRET={}", secret.expose());
            let _ = out.flush();
        }
        if !sb.addr().ip().is_loopback() {
            eprintln!(
                "fotp sandbox: warning: listening on {}, reachable from other machines; \
                 phones need --public-url http://THIS-MACHINE:{} in the links, and a network \
                 you share wants --app-secret-file and --control-token-file",
                sb.addr(),
                sb.addr().port()
            );
        }
        let mut list: Vec<String> = vec![format!("{}=pull", sandbox::DEFAULT_FT_ID)];
        list.extend(templates.iter().map(|t| {
            format!(
                "{}={}",
                t.ft_id,
                t.callback_url.as_deref().unwrap_or("pull")
            )
        }));
        logger_line(
            &logger,
            format!(
                "sandbox listening on {}; dashboard {}/ ; templates {}",
                sb.addr(),
                sb.base_url(),
                list.join(", ")
            ),
        );
        sb.wait()
            .await
            .map_err(|e| Error::new(ErrorKind::Network, format!("the sandbox stopped: {e}")))?;
        logger_line(&logger, "sandbox stopped".into());
        Ok::<_, Error>(())
    })?;
    // Let the log thread drain briefly; it never blocks exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(ExitCode::SUCCESS)
}

fn logger_line(logger: &sandbox::Logger, line: String) {
    logger.line(&line);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
