//! A real PostgreSQL server on 127.0.0.1 for the tests of the shared state database, started once per test
//! process from Debian's `postgresql` package (installed with apt-get when it is missing). It runs under a small
//! shell guard that stops it when the test process goes away, so no server outlives the tests. Nothing here is
//! optional: if PostgreSQL cannot be installed or started, the tests fail with the reason.
//!
//! Used by the store's unit tests (`src/state/postgres.rs`) and the end-to-end tests alike, so it needs only std.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "kib-test-password";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the server until stdin closes (the test process ended), then stops it fast and removes its files.
const GUARD: &str = r#"
"$BIN/postgres" -D "$DIR/data" -p "$PORT" -k "$DIR" -c listen_addresses=127.0.0.1 -c fsync=off \
    -c full_page_writes=off -c synchronous_commit=off -c ssl=on -c ssl_cert_file="$DIR/server.crt" \
    -c ssl_key_file="$DIR/server.key" > "$DIR/log" 2>&1 &
server=$!
cat > /dev/null
kill -INT "$server"
wait "$server"
rm -rf "$DIR"
"#;

struct Server {
    bin: PathBuf,
    port: u16,
    /// The certificate authority of the server's TLS certificate (for 127.0.0.1).
    authority: PathBuf,
    /// The guard's stdin: open for as long as this process lives.
    _guard: Child,
}

/// A new, empty database on the test server (starting it first if need be): its `postgres://` URL, which
/// carries a password as a production one would, without TLS.
pub fn database(name: &str) -> String {
    format!("{}?sslmode=disable", create(name))
}

/// A new, empty database reached over TLS only (`sslmode=require`), and the certificate authority to trust for it.
pub fn database_over_tls(name: &str) -> (String, PathBuf) {
    (format!("{}?sslmode=require", create(name)), server().authority.clone())
}

fn create(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = server();
    let database = format!("kib_{name}_{}", NEXT.fetch_add(1, Ordering::SeqCst)).replace('-', "_");
    let output = Command::new(server.bin.join("createdb"))
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "postgres", &database])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .expect("createdb runs");
    assert!(output.status.success(), "createdb {database}: {}", String::from_utf8_lossy(&output.stderr));
    format!("postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}", server.port)
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> Server {
    let bin = installed_bin().unwrap_or_else(|| {
        install();
        installed_bin().expect("Debian's postgresql package installs /usr/lib/postgresql/<version>/bin")
    });
    let dir = std::env::temp_dir().join(format!("kib-postgres-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("password"), PASSWORD).unwrap();
    certify(&dir);
    // The server refuses to run as root: as root, it runs as Debian's `postgres` user.
    let as_root = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim() == "0";
    if as_root {
        let chowned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap();
        assert!(chowned.success(), "chown {}", dir.display());
    }
    let command = |program: &Path| {
        let mut command = if as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.env("BIN", &bin).env("DIR", &dir);
        command
    };
    let initdb = command(&bin.join("initdb"))
        .args(["--auth=scram-sha-256", "--username=postgres", "--no-sync", "--pwfile"])
        .arg(dir.join("password"))
        .arg(dir.join("data"))
        .output()
        .expect("initdb runs");
    assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut guard = command(Path::new("sh"))
        .args(["-c", GUARD])
        .env("PORT", port.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .expect("the PostgreSQL guard starts");
    if !accepting_connections(&bin, port) {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        let _ = (guard.kill(), guard.wait());
        panic!("PostgreSQL did not start within {START_TIMEOUT:?}:\n{log}");
    }
    Server { bin, port, authority: dir.join("ca.crt"), _guard: guard }
}

/// A certificate authority and a server certificate for 127.0.0.1 signed by it, in `dir`, with openssl (which
/// Debian's postgresql package brings).
fn certify(dir: &Path) {
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let ca = ["req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=kib test CA"];
    let request = ["req", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"];
    let sign = ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"];
    let signed = ["-days", "2", "-out", "server.crt", "-extfile", "server.ext"];
    for step in [[&ca[..], &key].concat(), [&request[..], &key].concat(), [&sign[..], &signed].concat()] {
        let output = Command::new("openssl").args(&step).current_dir(dir).output().expect("openssl runs");
        assert!(output.status.success(), "openssl {step:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

/// Waits up to [`START_TIMEOUT`] for the server to accept connections.
fn accepting_connections(bin: &Path, port: u16) -> bool {
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The newest server binaries from Debian's package, if installed.
fn installed_bin() -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut bins: Vec<PathBuf> = versions
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    bins.sort_by_key(|bin| bin.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
    bins.pop()
}

fn install() {
    for args in [&["update", "-q"][..], &["install", "-y", "-q", "--no-install-recommends", "postgresql"]] {
        let output = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap_or_else(|error| panic!("PostgreSQL is not installed and apt-get cannot run: {error}"));
        assert!(
            output.status.success(),
            "installing Debian's postgresql package failed (apt-get {args:?}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
