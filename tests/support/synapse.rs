//! A real Synapse homeserver on 127.0.0.1 for the Matrix tests. On first use it installs Synapse from PyPI into
//! a virtualenv under the cargo target folder; each instance gets its own folder, port and database. Synapse runs
//! under a small Python guard that stops it when the test process goes away, so no server outlives the tests.
//! Nothing here is optional: if Synapse cannot be installed or started, the tests fail with the reason.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;

pub const SYNAPSE_VERSION: &str = "1.163.2";
const SHARED_SECRET: &str = "ketamine-info-bot-tests";
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs Synapse and stops it when stdin closes, that is when the test process ends.
const GUARD: &str = r#"
import subprocess, sys
server = subprocess.Popen([sys.executable, "-m", "synapse.app.homeserver", "-c", sys.argv[1]])
try:
    sys.stdin.read()
finally:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
"#;

/// Cargo's scratch folder for tests (examples, which lack it, use the same place).
fn work_dir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp"))
}

fn venv() -> PathBuf {
    work_dir().join(format!("synapse-{SYNAPSE_VERSION}"))
}

fn python() -> PathBuf {
    venv().join("bin/python")
}

/// Installs Synapse into the virtualenv unless it is there already.
fn install() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return;
    }
    let ready = || Command::new(python()).args(["-c", "import synapse"]).status().is_ok_and(|s| s.success());
    if !ready() {
        let run = |program: &Path, args: &[&str]| {
            let output = Command::new(program)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
            assert!(
                output.status.success(),
                "installing Synapse failed: {} {args:?}\n{}\n{}",
                program.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        };
        run(Path::new("python3"), &["-m", "venv", venv().to_str().unwrap()]);
        run(&python(), &["-m", "pip", "install", "--quiet", &format!("matrix-synapse=={SYNAPSE_VERSION}")]);
        assert!(ready(), "Synapse was installed but cannot be imported");
    }
    *installed = true;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One homeserver, `server_name: localhost`.
pub struct Synapse {
    pub url: String,
    port: u16,
    dir: PathBuf,
    guard: Mutex<Option<Child>>,
}

impl Synapse {
    /// Installs (first time only), configures and starts a fresh homeserver; returns once it answers.
    pub fn start(name: &str) -> Synapse {
        install();
        let dir = work_dir().join(format!("synapse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        write_config(&dir, port);
        let generated = Command::new(python())
            .args(["-m", "synapse.app.homeserver", "-c", "homeserver.yaml", "--generate-keys"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            generated.status.success(),
            "Synapse could not generate keys: {}",
            String::from_utf8_lossy(&generated.stderr)
        );
        let synapse = Synapse { url: format!("http://127.0.0.1:{port}"), port, dir, guard: Mutex::new(None) };
        synapse.launch();
        synapse
    }

    fn launch(&self) {
        assert!(std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok(), "port {} is taken", self.port);
        let guard = Command::new(python())
            .args(["-c", GUARD, "homeserver.yaml"])
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        *self.guard.lock().unwrap() = Some(guard);
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.healthy() {
            if let Some(status) = self.guard.lock().unwrap().as_mut().and_then(|g| g.try_wait().unwrap()) {
                panic!("Synapse exited with {status}: {}", self.logs());
            }
            assert!(Instant::now() < deadline, "Synapse did not answer within {START_TIMEOUT:?}: {}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).is_ok() && response.ends_with("OK")
    }

    fn logs(&self) -> String {
        let stderr = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        let log = std::fs::read_to_string(self.dir.join("homeserver.log")).unwrap_or_default();
        format!("{stderr}\n{log}")
    }

    /// Stops the homeserver (its data stays).
    pub fn stop(&self) {
        if let Some(mut guard) = self.guard.lock().unwrap().take() {
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }

    /// Starts the stopped homeserver again on the same port and data.
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }

    /// Registers a user through the shared-secret admin API; returns the full user id.
    pub async fn register(&self, name: &str, password: &str) -> String {
        self.register_with_token(name, password).await.0
    }

    /// Registers a user; returns the full user id and the access token of the device registration made.
    pub async fn register_with_token(&self, name: &str, password: &str) -> (String, String) {
        self.register_as(name, password, false).await
    }

    /// Limits how fast `user` may send messages, through the admin API (the test config lifts every limit).
    pub async fn limit_messages(&self, user: &str, per_second: u32, burst: u32) {
        let limits = json!({"messages_per_second": per_second, "burst_count": burst});
        self.admin(reqwest::Method::POST, &format!("users/{user}/override_ratelimit"), limits).await;
    }

    /// Deactivates `user` through the admin API, as a homeserver admin would.
    pub async fn deactivate(&self, user: &str) {
        self.admin(reqwest::Method::POST, &format!("deactivate/{user}"), json!({"erase": false})).await;
    }

    /// Blocks a room, or lifts the block, through the admin API: nobody on this server can join a blocked room.
    pub async fn block_room(&self, room: &str, block: bool) {
        self.admin(reqwest::Method::PUT, &format!("rooms/{room}/block"), json!({"block": block})).await;
    }

    /// Calls `/_synapse/admin/v1/{path}` as a new admin, asserting success.
    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}/_synapse/admin/v1/{path}", self.url))
            .bearer_auth(self.admin_token().await)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.text().await.unwrap());
    }

    /// The access token of a new admin account.
    async fn admin_token(&self) -> String {
        static ADMINS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let admin = format!("admin{}", ADMINS.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        self.register_as(&admin, "admin", true).await.1
    }

    async fn register_as(&self, name: &str, password: &str, admin: bool) -> (String, String) {
        let http = reqwest::Client::new();
        let endpoint = format!("{}/_synapse/admin/v1/register", self.url);
        let nonce: Value = http.get(&endpoint).send().await.unwrap().json().await.unwrap();
        let nonce = nonce["nonce"].as_str().expect("a nonce").to_owned();
        let mut mac = Hmac::<Sha1>::new_from_slice(SHARED_SECRET.as_bytes()).unwrap();
        let role = if admin { "admin" } else { "notadmin" };
        mac.update(format!("{nonce}\0{name}\0{password}\0{role}").as_bytes());
        let mac: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let body = json!({"nonce": nonce, "username": name, "password": password, "admin": admin, "mac": mac});
        let response = http.post(&endpoint).json(&body).send().await.unwrap();
        let status = response.status();
        let registered: Value = response.json().await.unwrap();
        assert!(status.is_success(), "registering {name} failed: {registered}");
        (registered["user_id"].as_str().unwrap().to_owned(), registered["access_token"].as_str().unwrap().to_owned())
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_config(dir: &Path, port: u16) {
    let d = dir.display();
    let unlimited = "{per_second: 1000, burst_count: 1000}";
    let config = format!(
        r#"server_name: localhost
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {d}/homeserver.db
log_config: {d}/log.config
media_store_path: {d}/media
signing_key_path: {d}/signing.key
registration_shared_secret: "{SHARED_SECRET}"
enable_registration: false
report_stats: false
macaroon_secret_key: "test-macaroon-secret"
form_secret: "test-form-secret"
trusted_key_servers: []
federation_domain_whitelist: []
suppress_key_server_warning: true
presence:
  enabled: false
bcrypt_rounds: 4
rc_message: {unlimited}
rc_registration: {unlimited}
rc_login:
  address: {unlimited}
  account: {unlimited}
  failed_attempts: {unlimited}
rc_joins:
  local: {unlimited}
  remote: {unlimited}
rc_joins_per_room: {unlimited}
rc_invites:
  per_room: {unlimited}
  per_user: {unlimited}
  per_issuer: {unlimited}
rc_room_creation: {unlimited}
rc_key_requests: {unlimited}
"#
    );
    std::fs::write(dir.join("homeserver.yaml"), config).unwrap();
    let log = format!(
        r#"version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(levelname)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {d}/homeserver.log
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
"#
    );
    std::fs::write(dir.join("log.config"), log).unwrap();
}
