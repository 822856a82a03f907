//! Pull mode: verify, show the link, wait for the result.
//!
//! `FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret \
//!  cargo run --example pull` (with `fotp sandbox` running; press Send on the link's page).

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fotp: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> fotp::Result<bool> {
    let client = fotp::Client::from_env()?;
    let ft_id = std::env::args().nth(1).unwrap_or_else(|| "2".into());
    let v = client.verify(&fotp::VerifyRequest::new(ft_id))?;
    println!("open on the phone: {}", v.url);
    println!("token {}", v.ft_token);
    let r = client.wait(&v.ft_token, Duration::from_secs(120))?;
    println!(
        "status {:?} (mobile {})",
        r.status,
        r.mobile.as_deref().unwrap_or("-")
    );
    Ok(r.status == fotp::Status::Success)
}
