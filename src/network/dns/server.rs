//! The responder process, `wharf __dns <root> [options]`: listens on UDP and TCP at every
//! address of the records file, answers from [`super::answer`], relays the rest upstream.
//!
//! It is a fresh exec of wharf, so it owns its process: it makes its own session, builds
//! a `current_thread` tokio runtime (one core is plenty for microsecond answers, and one
//! thread keeps its footprint small), and lives until SIGTERM. On SIGHUP it rereads the
//! records file, swaps the zones in, and binds or drops listeners whose address came or
//! went; listeners whose address stayed are kept, so their sockets never blink.
//!
//! Listeners bind with `IP_FREEBIND`: the gateway address may not be configured yet when
//! the records name it (the bridge comes up after), and binding must not wait for it.
//!
//! It must not touch anything but its own files under `<root>/network/` and its sockets,
//! and must never die on what a client sends.

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use futures_util::future::select_ok;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::Options;
use super::answer::{Reply, Transport, Zone, answer, message_id, servfail};
use super::process::{pid_path, read_records};
use super::records::Records;
use crate::network::etc::nameservers;
use crate::runtime::container::ProcRef;

/// How long forwarding may take before the client gets SERVFAIL. glibc waits 5 s per
/// try; answering sooner lets it move on (or fail) quickly instead of hanging, and a
/// working upstream answers well within it.
const FORWARD_TIMEOUT: Duration = Duration::from_millis(1500);
/// A TCP client that sends nothing for this long is dropped (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Forwarded queries in flight at once; beyond it, queries are dropped (the client
/// retries), so a flood cannot grow tasks and sockets without bound.
const MAX_FORWARDS: usize = 512;

/// Runs the responder for the state root `root`. Never returns.
pub fn main(root: &Path, options: &Options) -> ! {
    // A session of our own: the starter's terminal and process group are not ours. We
    // are not a group leader (a plain exec of a child), so this cannot fail for that.
    let _ = nix::unistd::setsid();
    let code = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(serve(root, options)),
        Err(e) => {
            ready(Err(format!("starting the runtime: {e}")));
            1
        }
    };
    std::process::exit(code)
}

/// Tells the starter (our standard output, a pipe) the outcome of the start-up, then
/// points standard output at the log (standard error) so the pipe closes.
fn ready(outcome: Result<(), String>) {
    let mut out = io::stdout();
    let _ = match outcome {
        Ok(()) => writeln!(out, "ok"),
        Err(message) => {
            log(&message);
            writeln!(out, "error: {message}")
        }
    };
    let _ = out.flush();
    let _ = nix::unistd::dup2_stdout(io::stderr());
}

fn log(message: &str) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!("{}.{:03} {message}", now.as_secs(), now.subsec_millis());
}

async fn serve(root: &Path, options: &Options) -> i32 {
    // Handlers first: a SIGHUP sent right after we report ready must not kill us.
    let signals = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = signals else {
        ready(Err("installing signal handlers".into()));
        return 1;
    };
    let records = match read_records(root) {
        Ok(records) => records,
        Err(e) => {
            ready(Err(e.to_string()));
            return 1;
        }
    };
    let shared = Arc::new(Shared {
        zones: RwLock::new(Arc::new(zones_of(&records))),
        host: Mutex::new(HostResolvers::new(options)),
        forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
    });
    let mut listeners = HashMap::new();
    for addr in records.listen_addresses() {
        match Listener::bind(SocketAddr::new(addr, options.port), &shared) {
            Ok(l) => {
                listeners.insert(addr, l);
            }
            Err(e) => {
                ready(Err(e));
                return 1;
            }
        }
    }
    let me = ProcRef::of(std::process::id() as i32);
    let pid_file = pid_path(root);
    if let Err(e) = write_pid(&pid_file, me) {
        ready(Err(e));
        return 1;
    }
    log(&format!("listening on {} address(es)", listeners.len()));
    confirm(root, records.generation);
    ready(Ok(()));
    loop {
        tokio::select! {
            _ = hup.recv() => reload(root, options, &shared, &mut listeners),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // Remove the pid file only if it is still ours (a successor may have written its own).
    let ours = std::fs::read(&pid_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<ProcRef>(&b).ok())
        == me;
    if ours {
        let _ = std::fs::remove_file(&pid_file);
    }
    log("stopped");
    0
}

/// Tells the writer of the records that `generation` is served now.
fn confirm(root: &Path, generation: u64) {
    let path = super::process::loaded_path(root);
    if let Err(e) = crate::state::replace_file(&path, generation.to_string().as_bytes()) {
        log(&format!("confirming generation {generation}: {e}"));
    }
}

fn write_pid(path: &Path, me: Option<ProcRef>) -> Result<(), String> {
    let me = me.ok_or("reading our own /proc entry")?;
    let bytes = serde_json::to_vec(&me).map_err(|e| e.to_string())?;
    crate::state::replace_file(path, &bytes).map_err(|e| e.to_string())
}

/// Rereads the records: new zones for every listener, new listeners for new addresses,
/// none for addresses that went. A bad file keeps the old records (logged).
fn reload(
    root: &Path,
    options: &Options,
    shared: &Arc<Shared>,
    listeners: &mut HashMap<IpAddr, Listener>,
) {
    let records = match read_records(root) {
        Ok(records) => records,
        Err(e) => {
            log(&format!("reload: keeping the old records: {e}"));
            return;
        }
    };
    if let Ok(mut zones) = shared.zones.write() {
        *zones = Arc::new(zones_of(&records));
    }
    confirm(root, records.generation);
    let wanted = records.listen_addresses();
    listeners.retain(|addr, _| wanted.contains(addr));
    for addr in wanted {
        if listeners.contains_key(&addr) {
            continue;
        }
        match Listener::bind(SocketAddr::new(addr, options.port), shared) {
            Ok(l) => {
                listeners.insert(addr, l);
            }
            Err(e) => log(&format!("reload: {e}")),
        }
    }
    log(&format!(
        "reloaded: {} network(s), {} address(es)",
        records.networks.len(),
        listeners.len()
    ));
}

/// The zones of a set of records: per listen address, the names of the networks listening
/// there; and per container address, the names of *every* network that container is on.
/// A container on two networks asks one resolver (its first network's gateway) and must
/// still find the names of both, as with Docker's embedded DNS; the client's own zone wins,
/// and the listener's serves anyone else (the host, a container we do not know yet).
#[derive(Debug, Default)]
struct Zones {
    by_listener: HashMap<IpAddr, Arc<Zone>>,
    by_client: HashMap<IpAddr, Arc<Zone>>,
}

fn zones_of(records: &Records) -> Zones {
    let by_listener = records
        .listen_addresses()
        .into_iter()
        .map(|addr| {
            let networks = records.networks.iter().filter(|n| n.listen.contains(&addr));
            (addr, Arc::new(Zone::new(networks)))
        })
        .collect();
    // Container name → the networks it is on (a container name is unique per state root).
    let mut on: HashMap<&str, Vec<&crate::network::dns::records::NetworkRecords>> = HashMap::new();
    for net in &records.networks {
        for entry in &net.entries {
            let nets = on.entry(entry.name.as_str()).or_default();
            if !nets.iter().any(|n| std::ptr::eq(*n, net)) {
                nets.push(net);
            }
        }
    }
    let mut by_client = HashMap::new();
    let mut built: HashMap<&str, Arc<Zone>> = HashMap::new();
    for net in &records.networks {
        for entry in &net.entries {
            let zone = built
                .entry(entry.name.as_str())
                .or_insert_with(|| {
                    Arc::new(Zone::new(
                        on.get(entry.name.as_str()).into_iter().flatten().copied(),
                    ))
                })
                .clone();
            for addr in &entry.addresses {
                by_client.insert(*addr, zone.clone());
            }
        }
    }
    Zones {
        by_listener,
        by_client,
    }
}

/// What every listener task shares.
struct Shared {
    zones: RwLock<Arc<Zones>>,
    host: Mutex<HostResolvers>,
    forwards: Arc<Semaphore>,
}

impl Shared {
    /// The zone for a query from `client` arriving at `local`.
    fn zone(&self, local: IpAddr, client: IpAddr) -> Arc<Zone> {
        self.zones
            .read()
            .ok()
            .and_then(|z| {
                z.by_client
                    .get(&client)
                    .or_else(|| z.by_listener.get(&local))
                    .cloned()
            })
            .unwrap_or_default()
    }

    /// Where the queries of `client` go: its own `dns:` servers, else the host's.
    fn upstreams(&self, zone: &Zone, client: IpAddr) -> Vec<SocketAddr> {
        match zone.upstreams(client) {
            Some(own) => own.to_vec(),
            None => self
                .host
                .lock()
                .map(|mut h| h.current())
                .unwrap_or_default(),
        }
    }
}

/// The host's resolvers, reread whenever `/etc/resolv.conf` changes (DHCP, VPNs and
/// NetworkManager rewrite it while we run for months). Loopback resolvers are kept: we
/// run in the host's network namespace, where they answer.
struct HostResolvers {
    path: PathBuf,
    port: u16,
    seen: Option<SystemTime>,
    servers: Vec<SocketAddr>,
}

impl HostResolvers {
    fn new(options: &Options) -> HostResolvers {
        HostResolvers {
            path: options.resolv_conf.clone(),
            port: options.upstream_port,
            seen: None,
            servers: Vec::new(),
        }
    }

    fn current(&mut self) -> Vec<SocketAddr> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_none() || modified != self.seen {
            let text = std::fs::read_to_string(&self.path).unwrap_or_default();
            self.servers = nameservers(&text)
                .into_iter()
                .map(|s| SocketAddr::new(s.ip(), self.port))
                .collect();
            self.seen = modified;
        }
        self.servers.clone()
    }
}

/// The UDP and TCP tasks of one address; dropping it closes both sockets.
struct Listener {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Listener {
    fn bind(addr: SocketAddr, shared: &Arc<Shared>) -> Result<Listener, String> {
        let fail = |what: &str, e: io::Error| format!("binding {what} {addr}: {e}");
        let udp = socket(addr, Type::DGRAM, Protocol::UDP).map_err(|e| fail("UDP", e))?;
        let udp = UdpSocket::from_std(udp.into()).map_err(|e| fail("UDP", e))?;
        let tcp = socket(addr, Type::STREAM, Protocol::TCP)
            .and_then(|s| s.listen(128).map(|()| s))
            .map_err(|e| fail("TCP", e))?;
        let tcp = TcpListener::from_std(tcp.into()).map_err(|e| fail("TCP", e))?;
        Ok(Listener {
            tasks: vec![
                tokio::spawn(serve_udp(Arc::new(udp), addr.ip(), shared.clone())),
                tokio::spawn(serve_tcp(tcp, addr.ip(), shared.clone())),
            ],
        })
    }
}

/// A bound, non-blocking socket at `addr`, which need not be configured yet (freebind).
fn socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    // A listener dropped on reload and bound again must not wait out TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

async fn serve_udp(socket: Arc<UdpSocket>, local: IpAddr, shared: Arc<Shared>) {
    let mut buf = vec![0; 65535];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            // Errors here are transient (ENOMEM, a pending ICMP error); never spin on them.
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let query = &buf[..n];
        let zone = shared.zone(local, client.ip());
        match answer(&zone, query, Transport::Udp) {
            Reply::Answer(bytes) => {
                let _ = socket.send_to(&bytes, client).await;
            }
            Reply::Ignore => {}
            Reply::Forward => {
                let Ok(permit) = shared.forwards.clone().try_acquire_owned() else {
                    continue;
                };
                let upstreams = shared.upstreams(&zone, client.ip());
                let query = query.to_vec();
                let socket = socket.clone();
                tokio::spawn(async move {
                    let answer = forward_or_servfail(&query, &upstreams, Transport::Udp).await;
                    if let Some(bytes) = answer {
                        let _ = socket.send_to(&bytes, client).await;
                    }
                    drop(permit);
                });
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, local: IpAddr, shared: Arc<Shared>) {
    loop {
        if let Ok((stream, client)) = listener.accept().await {
            tokio::spawn(serve_connection(stream, client.ip(), local, shared.clone()));
        }
    }
}

/// One TCP connection: length-prefixed queries, answered in order, until the client
/// closes it or idles (RFC 7766 §6.2.1 allows several queries per connection).
async fn serve_connection(
    mut stream: TcpStream,
    client: IpAddr,
    local: IpAddr,
    shared: Arc<Shared>,
) {
    loop {
        let mut len = [0; 2];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let mut query = vec![0; usize::from(u16::from_be_bytes(len))];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let zone = shared.zone(local, client);
        let response = match answer(&zone, &query, Transport::Tcp) {
            Reply::Answer(bytes) => Some(bytes),
            Reply::Ignore => None,
            Reply::Forward => {
                let upstreams = shared.upstreams(&zone, client);
                forward_or_servfail(&query, &upstreams, Transport::Tcp).await
            }
        };
        let Some(response) = response else { continue };
        let Ok(len) = u16::try_from(response.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(response.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&response);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The first upstream answer to `query`, or SERVFAIL when none answers in time (or none
/// can be reached at all: a refused port fails at once on a connected socket).
async fn forward_or_servfail(
    query: &[u8],
    upstreams: &[SocketAddr],
    transport: Transport,
) -> Option<Vec<u8>> {
    match forward(query, upstreams, transport).await {
        Some(bytes) => Some(bytes),
        None => servfail(query),
    }
}

/// Relays the raw query to every upstream at once over UDP; the first answer wins. The
/// query keeps the client's id, so the answer goes back unchanged; each upstream gets a
/// fresh socket (random port), which is what makes its answer unguessable to spoofers.
/// A truncated answer to a client that asked over TCP is asked again over TCP of the
/// upstream that answered, so the client gets the whole answer it came to TCP for.
async fn forward(query: &[u8], upstreams: &[SocketAddr], transport: Transport) -> Option<Vec<u8>> {
    let id = message_id(query)?;
    if upstreams.is_empty() {
        return None;
    }
    let asks = upstreams.iter().map(|u| Box::pin(ask_udp(query, *u, id)));
    let ((bytes, upstream), _) = tokio::time::timeout(FORWARD_TIMEOUT, select_ok(asks))
        .await
        .ok()?
        .ok()?;
    let truncated = bytes.get(2).is_some_and(|flags| flags & 0x02 != 0);
    if transport == Transport::Tcp && truncated {
        if let Ok(Ok(whole)) =
            tokio::time::timeout(FORWARD_TIMEOUT, ask_tcp(query, upstream, id)).await
        {
            return Some(whole);
        }
    }
    Some(bytes)
}

/// A response (QR set) to our query `id`; anything else on the socket is noise.
fn answers(packet: &[u8], id: u16) -> bool {
    let is_response = packet.get(2).is_some_and(|flags| flags & 0x80 != 0);
    packet.len() >= 12 && is_response && message_id(packet) == Some(id)
}

async fn ask_udp(query: &[u8], upstream: SocketAddr, id: u16) -> io::Result<(Vec<u8>, SocketAddr)> {
    let any: IpAddr = match upstream {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        if answers(&buf[..n], id) {
            buf.truncate(n);
            return Ok((buf, upstream));
        }
    }
}

async fn ask_tcp(query: &[u8], upstream: SocketAddr, id: u16) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    if answers(&buf, id) {
        Ok(buf)
    } else {
        Err(io::ErrorKind::InvalidData.into())
    }
}
