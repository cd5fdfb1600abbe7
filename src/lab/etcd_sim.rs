//! A simulated n-member etcd cluster that runs in-process and speaks the real etcd v3
//! gRPC API on 127.0.0.1, so `etcdctl` and kha's own etcd client cannot tell it from a
//! real cluster for the RPCs kha uses (KV Range/Put/DeleteRange, Cluster.MemberList,
//! Maintenance Status/Alarm/MoveLeader; everything else answers `Unimplemented`).
//!
//! All members share one simulated raft state behind a mutex. A background tick every
//! 100 ms elects a leader when there is quorum and none is running, advances the raft
//! index and revision (standing in for apiserver writes) and lets every running member
//! catch up. Stopping a member is like killing its process: the listener closes and its
//! open connections drop.
//!
//! As in etcd, without quorum Status and MemberList still answer from local state while
//! Range/Put/DeleteRange/Alarm wait for a leader until the client's deadline (or fail at
//! once with "etcdserver: no leader" when the client sets `hasleader`, i.e.
//! `ConnectOptions::with_require_leader`). Not simulated: Txn, Watch, Lease, Auth,
//! history (every read is at the current revision), sorting, and membership changes.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use color_eyre::eyre::{WrapErr, bail, eyre};
use etcd_client::proto::*;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Response, Status};

const TICK: Duration = Duration::from_millis(100);
const VERSION: &str = "3.5.16";
/// etcd's default request timeout (5 s + 2 election timeouts), in ticks.
const REQUEST_TIMEOUT_TICKS: u32 = 70;
const MIB: i64 = 1024 * 1024;
// etcdserverpb.AlarmType / AlarmRequest.AlarmAction wire values.
const ALARM_NONE: i32 = 0;
const ALARM_NOSPACE: i32 = 1;
const ACTION_GET: i32 = 0;
const ACTION_ACTIVATE: i32 = 1;
const ACTION_DEACTIVATE: i32 = 2;

/// A running simulated etcd cluster; dropping it stops every member.
pub struct SimEtcdCluster {
    state: Shared,
    servers: Mutex<Vec<Option<Served>>>,
    ticker: JoinHandle<()>,
}

/// One member's server task and the switch that drops its open connections.
struct Served {
    task: JoinHandle<()>,
    kill: watch::Sender<bool>,
}

type Shared = Arc<Mutex<State>>;

struct Member {
    id: u64,
    name: String,
    peer_url: String,
    client_url: String,
    port: u16,
    running: bool,
    /// Raft index (and applied index) as this member has seen it.
    raft_index: u64,
}

#[derive(Clone)]
struct Entry {
    value: Vec<u8>,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: i64,
}

struct State {
    cluster_id: u64,
    members: Vec<Member>,
    leader: Option<usize>,
    term: u64,
    index: u64,
    revision: i64,
    db_size: i64,
    ticks: u64,
    alarms: Vec<(u64, i32)>,
    kv: BTreeMap<Vec<u8>, Entry>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn has_quorum(&self) -> bool {
        self.members.iter().filter(|m| m.running).count() > self.members.len() / 2
    }

    /// Drops the leader without quorum, elects the lowest running member when the
    /// leader is gone. Returns whether there is quorum.
    fn reconcile(&mut self) -> bool {
        if !self.has_quorum() {
            self.leader = None;
            return false;
        }
        if self.leader.is_none_or(|l| !self.members[l].running) {
            self.leader = self.members.iter().position(|m| m.running);
            self.term += 1;
            self.index += 1;
        }
        true
    }

    fn tick(&mut self) {
        if !self.reconcile() {
            return;
        }
        self.index += 1;
        self.revision += 1;
        self.ticks += 1;
        if self.ticks.is_multiple_of(10) {
            self.db_size += 4096;
        }
        let index = self.index;
        for m in self.members.iter_mut().filter(|m| m.running) {
            // Apply at least 2 entries (or a quarter of the lag) per tick: a member back
            // from a stop is visibly behind for about a second.
            let gap = index.saturating_sub(m.raft_index);
            m.raft_index += gap.min((gap / 4).max(2));
        }
    }

    fn header(&self, idx: usize, revision: i64) -> PbResponseHeader {
        PbResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.members[idx].id,
            revision,
            raft_term: self.term,
        }
    }

    fn require_leader(&self) -> Result<(), Status> {
        match self.leader {
            Some(_) => Ok(()),
            None => Err(Status::unavailable("etcdserver: no leader")),
        }
    }

    fn matching(&self, key: &[u8], range_end: &[u8]) -> Vec<Vec<u8>> {
        self.kv
            .keys()
            .filter(|k| match range_end {
                [] => k.as_slice() == key,
                [0] => k.as_slice() >= key,
                end => k.as_slice() >= key && k.as_slice() < end,
            })
            .cloned()
            .collect()
    }

    fn kv_pb(&self, key: &[u8], keys_only: bool) -> Option<PbKeyValue> {
        let e = self.kv.get(key)?;
        Some(PbKeyValue {
            key: key.to_vec(),
            create_revision: e.create_revision,
            mod_revision: e.mod_revision,
            version: e.version,
            value: if keys_only {
                Vec::new()
            } else {
                e.value.clone()
            },
            lease: e.lease,
        })
    }
}

fn alarm_name(alarm: i32) -> &'static str {
    match alarm {
        ALARM_NONE => "NONE",
        ALARM_NOSPACE => "NOSPACE",
        _ => "CORRUPT",
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn member_name(i: usize) -> String {
    match u8::try_from(i) {
        Ok(i) if i < 26 => format!("etcd-{}", char::from(b'a' + i)),
        _ => format!("etcd-{i}"),
    }
}

async fn bind(port: u16) -> color_eyre::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .wrap_err_with(|| format!("binding 127.0.0.1:{port} for a simulated etcd member"))
}

impl SimEtcdCluster {
    /// Binds `n` members on 127.0.0.1 with OS-chosen free ports (client URL
    /// `http://127.0.0.1:PORT`), named "etcd-a", "etcd-b", "etcd-c", ..., with member 0
    /// as the first leader. Returns once every member listens.
    pub async fn start(n: usize) -> color_eyre::Result<SimEtcdCluster> {
        if n == 0 {
            bail!("a simulated etcd cluster needs at least one member");
        }
        let (mut listeners, mut peer_ports) = (Vec::new(), Vec::new());
        let mut held = Vec::new(); // keeps peer ports distinct until all are chosen
        for _ in 0..n {
            listeners.push(bind(0).await?);
            let peer = bind(0).await?;
            peer_ports.push(peer.local_addr()?.port());
            held.push(peer);
        }
        drop(held);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut seed = nanos ^ (u64::from(std::process::id()) << 32);
        let mut members: Vec<Member> = Vec::with_capacity(n);
        for (i, l) in listeners.iter().enumerate() {
            let port = l.local_addr()?.port();
            let mut id = 0;
            while id == 0 || members.iter().any(|m| m.id == id) {
                seed = splitmix64(seed);
                id = seed;
            }
            members.push(Member {
                id,
                name: member_name(i),
                peer_url: format!("http://127.0.0.1:{}", peer_ports[i]),
                client_url: format!("http://127.0.0.1:{port}"),
                port,
                running: true,
                raft_index: 8,
            });
        }
        let state = Arc::new(Mutex::new(State {
            cluster_id: splitmix64(members.iter().fold(0, |acc, m| acc ^ m.id)) | 1,
            members,
            leader: Some(0),
            term: 2,
            index: 8,
            revision: 1,
            db_size: 24 * MIB + 4096 * (nanos % 512) as i64,
            ticks: 0,
            alarms: Vec::new(),
            kv: BTreeMap::new(),
        }));
        let ticker = tokio::spawn({
            let state = state.clone();
            async move {
                let mut every = tokio::time::interval(TICK);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    lock(&state).tick();
                }
            }
        });
        let cluster = SimEtcdCluster {
            state,
            servers: Mutex::new((0..n).map(|_| None).collect()),
            ticker,
        };
        for (idx, listener) in listeners.into_iter().enumerate() {
            cluster.serve(idx, listener);
        }
        Ok(cluster)
    }

    fn serve(&self, idx: usize, listener: TcpListener) {
        let (kill, killed) = watch::channel(false);
        let svc = Svc {
            idx,
            state: self.state.clone(),
        };
        let incoming = TcpListenerStream::new(listener)
            .map(move |conn| conn.map(|io| SimConn::new(io, killed.clone())));
        let router = tonic::transport::Server::builder()
            .add_service(PbKvServer::new(svc.clone()))
            .add_service(PbClusterServer::new(svc.clone()))
            .add_service(PbMaintenanceServer::new(svc));
        let task = tokio::spawn(async move {
            let _ = router.serve_with_incoming(incoming).await;
        });
        if let Some(old) = lock(&self.servers)[idx].replace(Served { task, kill }) {
            old.kill.send_replace(true);
            old.task.abort();
        }
        let mut st = lock(&self.state);
        st.members[idx].running = true;
        st.reconcile();
    }

    fn each_member<T>(&self, f: impl Fn(&Member) -> T) -> Vec<T> {
        lock(&self.state).members.iter().map(f).collect()
    }

    /// Client URLs ("http://127.0.0.1:PORT"), in member order.
    pub fn client_urls(&self) -> Vec<String> {
        self.each_member(|m| m.client_url.clone())
    }

    /// Member names ("etcd-a", "etcd-b", ...), in member order.
    pub fn member_names(&self) -> Vec<String> {
        self.each_member(|m| m.name.clone())
    }

    /// Member IDs (nonzero, stable for the cluster's life), in member order.
    pub fn member_ids(&self) -> Vec<u64> {
        self.each_member(|m| m.id)
    }

    /// Whether member `idx` is serving (false for stopped or unknown members).
    pub fn is_running(&self, idx: usize) -> bool {
        lock(&self.state)
            .members
            .get(idx)
            .is_some_and(|m| m.running)
    }

    /// Index of the current leader, `None` without quorum.
    pub fn leader(&self) -> Option<usize> {
        lock(&self.state).leader
    }

    /// Like killing the member's process: its port refuses connections and its open
    /// connections drop. Losing the leader elects a new one (with quorum) right away.
    /// Stopping a stopped member is a no-op.
    pub async fn stop_member(&self, idx: usize) -> color_eyre::Result<()> {
        let served = lock(&self.servers)
            .get_mut(idx)
            .ok_or_else(|| eyre!("no simulated etcd member {idx}"))?
            .take();
        {
            let mut st = lock(&self.state);
            st.members[idx].running = false;
            st.reconcile();
        }
        if let Some(s) = served {
            // Close the listener first, so clients reconnecting are refused.
            s.task.abort();
            let _ = s.task.await;
            s.kill.send_replace(true);
            // Like a killed process: return once its connections are closed too.
            let _ = tokio::time::timeout(Duration::from_secs(1), s.kill.closed()).await;
        }
        Ok(())
    }

    /// Restarts a stopped member on the same port (retrying the bind for up to 3 s
    /// while the port is still held). Its raft index catches up within about a second.
    /// Starting a running member is a no-op.
    pub async fn start_member(&self, idx: usize) -> color_eyre::Result<()> {
        let port = lock(&self.state)
            .members
            .get(idx)
            .ok_or_else(|| eyre!("no simulated etcd member {idx}"))?
            .port;
        if lock(&self.servers)[idx].is_some() {
            return Ok(());
        }
        let mut attempts = 0;
        let listener = loop {
            match bind(port).await {
                Ok(l) => break l,
                Err(e) if attempts >= 60 => return Err(e),
                Err(_) => attempts += 1,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.serve(idx, listener);
        Ok(())
    }

    /// Raises (true) a NOSPACE alarm on the leader (member 0 without a leader), or
    /// clears (false) every NOSPACE alarm, like `etcdctl alarm disarm`.
    pub fn set_nospace_alarm(&self, raised: bool) {
        let mut st = lock(&self.state);
        if raised {
            let alarm = (st.members[st.leader.unwrap_or(0)].id, ALARM_NOSPACE);
            if !st.alarms.contains(&alarm) {
                st.alarms.push(alarm);
            }
        } else {
            st.alarms.retain(|&(_, a)| a != ALARM_NOSPACE);
        }
    }

    /// Stops every member and the background tick, waiting until the ports are closed.
    pub async fn shutdown(self) {
        let n = lock(&self.servers).len();
        for idx in 0..n {
            let _ = self.stop_member(idx).await;
        }
    }
}

impl Drop for SimEtcdCluster {
    fn drop(&mut self) {
        self.ticker.abort();
        for s in lock(&self.servers).iter_mut().filter_map(Option::take) {
            s.kill.send_replace(true);
            s.task.abort();
        }
    }
}

/// One accepted client connection, wrapped for two reasons:
/// - once its member is stopped all I/O fails, so tonic drops the connection (aborting
///   the accept loop alone would leave established connections served);
/// - etcdctl 3.4 dials single endpoints (`endpoint status`, `move-leader`, ...) with
///   `:authority` set to the whole URL ("http://127.0.0.1:PORT"), which hyper's h2
///   rejects as malformed (RST_STREAM PROTOCOL_ERROR) where etcd's grpc-go accepts it.
///   So `:authority` in the client's HEADERS frames is rewritten to "127.0.0.1:PORT";
///   our first SETTINGS frame gets SETTINGS_HEADER_TABLE_SIZE=0 so clients stop using
///   the HPACK dynamic table and the rewrite cannot desynchronise it.
struct SimConn {
    io: TcpStream,
    /// Completes when the member stops; owns a receiver of the kill switch, so the
    /// switch's `closed()` tells when every connection is gone.
    killed: Pin<Box<dyn Future<Output = ()> + Send>>,
    dead: bool,
    authority: Vec<u8>,
    /// Bytes read from the client that do not make a whole frame yet.
    raw: Vec<u8>,
    /// Bytes read from the client, rewritten where needed, waiting for h2 to read them.
    clean: Vec<u8>,
    preface_left: usize,
    /// Bytes from h2 held back until our SETTINGS frame is patched and written.
    out: Vec<u8>,
    settings_patched: bool,
}

const FRAME_HEADERS: u8 = 0x1;
const FRAME_SETTINGS: u8 = 0x4;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

impl SimConn {
    fn new(io: TcpStream, mut kill: watch::Receiver<bool>) -> Self {
        let _ = io.set_nodelay(true);
        let port = io.local_addr().map_or(0, |a| a.port());
        let killed = Box::pin(async move {
            let _ = kill.wait_for(|k| *k).await;
        });
        SimConn {
            io,
            killed,
            dead: false,
            authority: format!("127.0.0.1:{port}").into_bytes(),
            raw: Vec::new(),
            clean: Vec::new(),
            preface_left: 24,
            out: Vec::new(),
            settings_patched: false,
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.dead && self.killed.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        self.dead = true;
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated etcd member stopped",
        ))
    }

    /// Moves the client preface and every complete frame from `raw` to `clean`.
    fn process(&mut self) {
        let n = self.preface_left.min(self.raw.len());
        self.clean.extend(self.raw.drain(..n));
        self.preface_left -= n;
        while self.preface_left == 0 && self.raw.len() >= 9 {
            let len = u32::from_be_bytes([0, self.raw[0], self.raw[1], self.raw[2]]) as usize;
            if self.raw.len() < 9 + len {
                break;
            }
            let frame: Vec<u8> = self.raw.drain(..9 + len).collect();
            match frame[3] {
                FRAME_HEADERS => match rewrite_headers(&frame, &self.authority) {
                    Some(f) => self.clean.extend(f),
                    None => self.clean.extend(frame),
                },
                _ => self.clean.extend(frame),
            }
        }
    }

    fn drain_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.settings_patched && !self.out.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => drop(self.out.drain(..n)),
                other => return other.map_ok(|_| ()),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// An HPACK prefixed integer: (value, bytes used).
fn hpack_int(s: &[u8], prefix_bits: u32) -> Option<(usize, usize)> {
    let mask = (1u8 << prefix_bits) - 1;
    let mut v = usize::from(*s.first()? & mask);
    if v < usize::from(mask) {
        return Some((v, 1));
    }
    for (i, &b) in s.iter().enumerate().skip(1).take(4) {
        v += usize::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Length in bytes of the HPACK string literal at the start of `s`.
fn hpack_str_len(s: &[u8]) -> Option<usize> {
    let (len, n) = hpack_int(s, 7)?;
    Some(n + len).filter(|&total| total <= s.len())
}

/// A HEADERS frame with every `:authority` (static name index 1) literal set to
/// `authority`; `None` leaves the frame as it is.
fn rewrite_headers(frame: &[u8], authority: &[u8]) -> Option<Vec<u8>> {
    let flags = frame[4];
    if flags & FLAG_END_HEADERS == 0 {
        return None; // continued in CONTINUATION frames: never sent for gRPC calls
    }
    let mut payload = &frame[9..];
    if flags & FLAG_PADDED != 0 {
        let pad = usize::from(*payload.first()?);
        payload = payload.get(1..payload.len().checked_sub(pad)?)?;
    }
    let prio_len = if flags & FLAG_PRIORITY != 0 { 5 } else { 0 };
    let (prio, block) = payload.split_at_checked(prio_len)?;
    let mut out = prio.to_vec();
    let mut i = 0;
    while i < block.len() {
        let (start, b) = (i, block[i]);
        let (prefix_bits, literal) = match b {
            _ if b & 0x80 != 0 => (7, false),    // indexed field
            _ if b & 0xc0 == 0x40 => (6, true),  // literal, incremental indexing
            _ if b & 0xe0 == 0x20 => (5, false), // dynamic table size update
            _ => (4, true),                      // literal, not indexed / never indexed
        };
        let (index, n) = hpack_int(&block[i..], prefix_bits)?;
        i += n;
        if literal {
            if index == 0 {
                i += hpack_str_len(&block[i..])?;
            }
            let value_at = i;
            i += hpack_str_len(&block[i..])?;
            if index == 1 && authority.len() < 0x7f {
                out.extend_from_slice(&block[start..value_at]);
                out.push(authority.len() as u8);
                out.extend_from_slice(authority);
                continue;
            }
        }
        out.extend_from_slice(&block[start..i]);
    }
    let len = u32::try_from(out.len()).ok().filter(|&l| l <= 16_384)?;
    let mut rewritten = len.to_be_bytes()[1..].to_vec();
    rewritten.extend_from_slice(&[FRAME_HEADERS, flags & !FLAG_PADDED]);
    rewritten.extend_from_slice(&frame[5..9]);
    rewritten.extend(out);
    Some(rewritten)
}

impl AsyncRead for SimConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        while this.clean.is_empty() {
            let mut chunk = [0u8; 8192];
            let mut chunk = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(())) if chunk.filled().is_empty() => {
                    // EOF: hand over whatever partial frame is left, then EOF.
                    this.clean.append(&mut this.raw);
                    break;
                }
                Poll::Ready(Ok(())) => {
                    this.raw.extend_from_slice(chunk.filled());
                    this.process();
                }
                other => return other,
            }
        }
        let n = this.clean.len().min(buf.remaining());
        buf.put_slice(&this.clean[..n]);
        this.clean.drain(..n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        if this.settings_patched {
            ready!(this.drain_out(cx))?;
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        this.out.extend_from_slice(buf);
        if this.out.len() >= 9 {
            this.settings_patched = true;
            let out = &mut this.out;
            if out[3] == FRAME_SETTINGS && out[4] == 0 {
                let len = u32::from_be_bytes([0, out[0], out[1], out[2]]) + 6;
                out[..3].copy_from_slice(&len.to_be_bytes()[1..]);
                // SETTINGS_HEADER_TABLE_SIZE (0x1) = 0
                out.splice(9..9, [0, 1, 0, 0, 0, 0]);
            }
        }
        if let Poll::Ready(Err(e)) = this.drain_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        ready!(this.drain_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl Connected for SimConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// The gRPC services of one member.
#[derive(Clone)]
struct Svc {
    idx: usize,
    state: Shared,
}

type Rpc<T> = Result<Response<T>, Status>;

fn unimplemented<T>(rpc: &str) -> Rpc<T> {
    Err(Status::unimplemented(format!(
        "{rpc}: not in kha's etcd sim"
    )))
}

fn key_required(key: &[u8]) -> Result<(), Status> {
    match key.is_empty() {
        true => Err(Status::invalid_argument("etcdserver: key is not provided")),
        false => Ok(()),
    }
}

impl Svc {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Like etcd without a leader: fail at once when the client asked for a leader
    /// (`hasleader` metadata, clientv3's WithRequireLeader), else wait for one up to
    /// etcd's default request timeout (clients usually give up first).
    async fn await_leader<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if req.metadata().get("hasleader").is_some_and(|v| v == "true") {
            return self.state().require_leader();
        }
        for _ in 0..REQUEST_TIMEOUT_TICKS {
            if self.state().leader.is_some() {
                return Ok(());
            }
            tokio::time::sleep(TICK).await;
        }
        Err(Status::unavailable("etcdserver: request timed out"))
    }
}

#[tonic::async_trait]
impl PbKvService for Svc {
    type RangeStreamStream = tokio_stream::Empty<Result<PbRangeStreamResponse, Status>>;

    /// Serializable reads are served locally even without quorum, like etcd.
    async fn range(&self, req: Request<PbRangeRequest>) -> Rpc<PbRangeResponse> {
        if !req.get_ref().serializable {
            self.await_leader(&req).await?;
        }
        let r = req.into_inner();
        key_required(&r.key)?;
        let st = self.state();
        let keys = st.matching(&r.key, &r.range_end);
        let limit = usize::try_from(r.limit).ok().filter(|&l| l > 0);
        let shown = limit.unwrap_or(keys.len()).min(keys.len());
        let kvs = match r.count_only {
            true => Vec::new(),
            false => (keys[..shown].iter())
                .filter_map(|k| st.kv_pb(k, r.keys_only))
                .collect(),
        };
        Ok(Response::new(PbRangeResponse {
            header: Some(st.header(self.idx, st.revision)),
            kvs,
            more: !r.count_only && shown < keys.len(),
            count: keys.len() as i64,
        }))
    }

    /// Refused with "database space exceeded" while a NOSPACE alarm is active.
    async fn put(&self, req: Request<PbPutRequest>) -> Rpc<PbPutResponse> {
        self.await_leader(&req).await?;
        let r = req.into_inner();
        key_required(&r.key)?;
        let mut st = self.state();
        if st.alarms.iter().any(|&(_, a)| a == ALARM_NOSPACE) {
            return Err(Status::resource_exhausted(
                "etcdserver: mvcc: database space exceeded",
            ));
        }
        let prev = st.kv.get(&r.key).cloned();
        if prev.is_none() && (r.ignore_value || r.ignore_lease) {
            return Err(Status::invalid_argument("etcdserver: key not found"));
        }
        let prev_kv = r.prev_kv.then(|| st.kv_pb(&r.key, false)).flatten();
        st.revision += 1;
        st.index += 1;
        let rev = st.revision;
        let entry = match prev {
            Some(p) => Entry {
                value: if r.ignore_value { p.value } else { r.value },
                lease: if r.ignore_lease { p.lease } else { r.lease },
                mod_revision: rev,
                version: p.version + 1,
                ..p
            },
            None => Entry {
                value: r.value,
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                lease: r.lease,
            },
        };
        st.kv.insert(r.key, entry);
        Ok(Response::new(PbPutResponse {
            header: Some(st.header(self.idx, rev)),
            prev_kv,
        }))
    }

    async fn delete_range(&self, req: Request<PbDeleteRequest>) -> Rpc<PbDeleteResponse> {
        self.await_leader(&req).await?;
        let r = req.into_inner();
        key_required(&r.key)?;
        let mut st = self.state();
        let keys = st.matching(&r.key, &r.range_end);
        let prev_kvs = match r.prev_kv {
            true => keys.iter().filter_map(|k| st.kv_pb(k, false)).collect(),
            false => Vec::new(),
        };
        for k in &keys {
            st.kv.remove(k);
        }
        if !keys.is_empty() {
            st.revision += 1;
            st.index += 1;
        }
        Ok(Response::new(PbDeleteResponse {
            header: Some(st.header(self.idx, st.revision)),
            deleted: keys.len() as i64,
            prev_kvs,
        }))
    }

    async fn range_stream(&self, _: Request<PbRangeRequest>) -> Rpc<Self::RangeStreamStream> {
        unimplemented("KV.RangeStream")
    }
    async fn txn(&self, _: Request<PbTxnRequest>) -> Rpc<PbTxnResponse> {
        unimplemented("KV.Txn")
    }
    async fn compact(&self, _: Request<PbCompactionRequest>) -> Rpc<PbCompactionResponse> {
        unimplemented("KV.Compact")
    }
}

#[tonic::async_trait]
impl PbClusterService for Svc {
    /// Served from local state, so it works without quorum (unless linearizable).
    async fn member_list(&self, req: Request<PbMemberListRequest>) -> Rpc<PbMemberListResponse> {
        if req.get_ref().linearizable {
            self.await_leader(&req).await?;
        }
        let st = self.state();
        let members = st.members.iter().map(|m| PbMember {
            id: m.id,
            name: m.name.clone(),
            peer_ur_ls: vec![m.peer_url.clone()],
            client_ur_ls: vec![m.client_url.clone()],
            is_learner: false,
        });
        Ok(Response::new(PbMemberListResponse {
            header: Some(st.header(self.idx, 0)), // etcd leaves the revision out here
            members: members.collect(),
        }))
    }

    async fn member_add(&self, _: Request<PbMemberAddRequest>) -> Rpc<PbMemberAddResponse> {
        unimplemented("Cluster.MemberAdd")
    }
    async fn member_remove(
        &self,
        _: Request<PbMemberRemoveRequest>,
    ) -> Rpc<PbMemberRemoveResponse> {
        unimplemented("Cluster.MemberRemove")
    }
    async fn member_update(
        &self,
        _: Request<PbMemberUpdateRequest>,
    ) -> Rpc<PbMemberUpdateResponse> {
        unimplemented("Cluster.MemberUpdate")
    }
    async fn member_promote(
        &self,
        _: Request<PbMemberPromoteRequest>,
    ) -> Rpc<PbMemberPromoteResponse> {
        unimplemented("Cluster.MemberPromote")
    }
}

#[tonic::async_trait]
impl PbMaintenanceService for Svc {
    type SnapshotStream = tokio_stream::Empty<Result<PbSnapshotResponse, Status>>;

    /// Goes through raft in etcd, so it needs quorum; like etcd, the reply has no header.
    async fn alarm(&self, req: Request<PbAlarmRequest>) -> Rpc<PbAlarmResponse> {
        self.await_leader(&req).await?;
        let r = req.into_inner();
        let mut st = self.state();
        let this = (r.member_id, r.alarm);
        let pb = |(member_id, alarm): (u64, i32)| PbAlarmMember { member_id, alarm };
        let alarms = match r.action {
            ACTION_GET => (st.alarms.iter())
                .filter(|&&(_, a)| r.alarm == ALARM_NONE || a == r.alarm)
                .map(|&a| pb(a))
                .collect(),
            ACTION_ACTIVATE if !st.alarms.contains(&this) => {
                st.alarms.push(this);
                vec![pb(this)]
            }
            ACTION_DEACTIVATE if st.alarms.contains(&this) => {
                st.alarms.retain(|&a| a != this);
                vec![pb(this)]
            }
            ACTION_ACTIVATE | ACTION_DEACTIVATE => Vec::new(),
            _ => return Err(Status::invalid_argument("etcdserver: unknown alarm action")),
        };
        Ok(Response::new(PbAlarmResponse {
            header: None,
            alarms,
        }))
    }

    /// Served from local state; errors list "etcdserver: no leader" and active alarms.
    async fn status(&self, _: Request<PbStatusRequest>) -> Rpc<PbStatusResponse> {
        let st = self.state();
        let me = &st.members[self.idx];
        let leader = st.leader.map_or(0, |l| st.members[l].id);
        let no_leader = (leader == 0).then(|| "etcdserver: no leader".to_string());
        let alarms =
            (st.alarms.iter()).map(|&(id, a)| format!("memberID:{id} alarm:{} ", alarm_name(a)));
        let db_size = st.db_size + 8192 * self.idx as i64;
        Ok(Response::new(PbStatusResponse {
            header: Some(st.header(self.idx, st.revision)),
            version: VERSION.to_string(),
            db_size,
            leader,
            raft_index: me.raft_index,
            raft_term: st.term,
            raft_applied_index: me.raft_index,
            errors: no_leader.into_iter().chain(alarms).collect(),
            db_size_in_use: db_size - 3 * MIB,
            is_learner: false,
            ..Default::default()
        }))
    }

    /// Like etcd: only the leader hands over leadership, to a running member.
    async fn move_leader(&self, req: Request<PbMoveLeaderRequest>) -> Rpc<PbMoveLeaderResponse> {
        let target_id = req.into_inner().target_id;
        let mut st = self.state();
        if st.leader != Some(self.idx) {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        let Some(target) = st.members.iter().position(|m| m.id == target_id) else {
            let msg = "etcdserver: bad leader transferee";
            return Err(Status::failed_precondition(msg));
        };
        if !st.members[target].running {
            let msg = "etcdserver: request timed out, leader transfer took too long";
            return Err(Status::unavailable(msg));
        }
        if target != self.idx {
            st.leader = Some(target);
            st.term += 1;
            st.index += 1;
        }
        Ok(Response::new(PbMoveLeaderResponse {
            header: Some(st.header(self.idx, st.revision)),
        }))
    }

    async fn defragment(&self, _: Request<PbDefragmentRequest>) -> Rpc<PbDefragmentResponse> {
        unimplemented("Maintenance.Defragment")
    }
    async fn hash(&self, _: Request<PbHashRequest>) -> Rpc<PbHashResponse> {
        unimplemented("Maintenance.Hash")
    }
    async fn hash_kv(&self, _: Request<PbHashKvRequest>) -> Rpc<PbHashKvResponse> {
        unimplemented("Maintenance.HashKV")
    }
    async fn snapshot(&self, _: Request<PbSnapshotRequest>) -> Rpc<Self::SnapshotStream> {
        unimplemented("Maintenance.Snapshot")
    }
    async fn downgrade(&self, _: Request<PbDowngradeRequest>) -> Rpc<PbDowngradeResponse> {
        unimplemented("Maintenance.Downgrade")
    }
}
