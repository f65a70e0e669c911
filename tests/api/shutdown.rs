//! Graceful shutdown: on SIGTERM the real binary stops accepting, finishes the requests it
//! is serving, and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::helpers::TestDatabase;

#[test]
fn sigterm_lets_in_flight_requests_finish_and_exits_zero() {
    stop_with(Signal::SIGTERM);
}

#[test]
fn sigint_is_graceful_too() {
    stop_with(Signal::SIGINT);
}

fn stop_with(signal: Signal) {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    // A "Redis" that accepts connections and never answers makes `/readyz` take 1.5 s (its
    // Redis check's limit): long enough to be in flight when SIGTERM arrives.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_points-app"))
        .env("APP_PORT", "0")
        .env("APP_SANDBOX_PORT", "0")
        .env("APP_DATA_DIR", dir.path())
        .env("APP_LOG_FORMAT", "json")
        .env("DATABASE_URL", &db.url)
        .env("REDIS_URL", format!("redis://127.0.0.1:{silent_port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let port = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server exited early"
        );
        if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<u16>()
                .unwrap();
        }
    };
    // Drain the rest of stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));

    // Requests whose handlers are running when the signal arrives.
    let mut in_flight: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();

    for s in &mut in_flight {
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        // The complete answer of the request: ready but degraded, naming Redis, with its
        // JSON body.
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "in-flight request lost: {answer:?}"
        );
        assert!(answer.contains(r#""redis":"unreachable""#), "{answer:?}");
    }
    // New connections are no longer served.
    let refused = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut buf = [0u8; 16];
        match s.read(&mut buf)? {
            0 => Err(std::io::Error::other("closed")),
            _ => Ok(()),
        }
    });
    assert!(refused.is_err(), "a new request was served after SIGTERM");

    let status = child.wait().unwrap();
    drop(silent);
    assert!(status.success(), "exit status {status:?}");
}
