// One session of the receiver: one data thread (a poll loop), a pool of decompression workers,
// and one QMP monitor thread per destination VM that has a dest-qmp socket:
//
//   network -> RecordOpener (authenticity) -> [pool: zstd] -> FrameReader (structure) ->
//   semantic checks (vm opened, channel exists, page id already sent) -> per-(vm, channel)
//   queue -> the destination QEMU's socket. Return-path bytes flow the other way as
//   RP_DATA frames.
//
// Decompression is the costly step, so every verified body goes through an OrderedWork
// pool: a body that is one ZFRAMES frame (what the sender's compressor makes) is inflated
// by a worker (DestCore::Inflate); any other body only keeps its place. The data thread
// takes bodies back in arrival order and hands them to the destination core, so the core
// sees exactly the frames, in exactly the order, it would see without the pool, and
// gives the same errors. The pool holds at most 2 * threads + 2 bodies: while it is full,
// verified bodies wait in the opener and the link is not read, so a fast sender cannot
// grow the receiver's memory. When the session ends (the sender's connection or a record
// failed), every body received before is handled first, in order.
//
// Page contents live in a PageStore for the whole session: a REF may name any page sent
// before. The link is read only while every destination queue is under max_buffer, so a
// slow destination slows the sender (and through it QEMU) instead of growing memory.
//
// A destination is "loaded" when it closes its side of the main channel after we gave it
// the whole stream; its QMP (if given) then tells whether the load succeeded and when it
// resumed. If the session breaks, every destination connection that has not delivered a
// complete stream is closed: QEMU then fails the incoming migration and never runs with
// partial memory.
#include "migrate/receive_session.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <deque>
#include <optional>
#include <set>
#include <vector>

#include "base/clock.h"
#include "base/ordered_work.h"
#include "core/dest_core.h"
#include "encode/zstd_codec.h"
#include "index/summary.h"
#include "migrate/stream_tee.h"
#include "migrate/timeouts.h"
#include "migrate/vm_monitor.h"
#include "wire/control.h"
#include "wire/frame.h"
#include "wire/record.h"

namespace gangmig::migrate {
namespace {

using nlohmann::json;

struct DestChannel {
  net::Fd fd;
  net::OutQueue out;
  bool eof_pending = false;  // sender: source closed; shut our write side once drained
  bool write_shut = false;
  bool read_closed = false;
  uint64_t written = 0;  // bytes handed to the destination's socket
  int64_t progress_us = 0;  // monotonic: the queue last shrank, or filled from empty
  // Not connected yet (--dest-wait): tried again until this monotonic time (0: connected).
  int64_t connect_deadline_us = 0;
  int64_t next_try_us = 0;
  std::string connect_error;  // the last attempt's
};

// How far a destination has taken its main stream is reported back (VM_EVENT
// "progress") every this many bytes, so the sender can bound what is in flight.
constexpr uint64_t kProgressEvery = 64 * 1024;

// --dest-wait: how often a destination that is not there yet is tried again.
constexpr int64_t kConnectRetryUs = 50 * 1000;

struct DestVm {
  std::string name, dest, dest_qmp;
  std::vector<DestChannel> channels;
  std::unique_ptr<VmMonitor> monitor;
  bool failed = false;
  bool loaded = false;    // main channel closed by QEMU after the full stream
  bool reported = false;  // "done"/"failed" event sent
  int64_t loaded_us = 0;
  int64_t loaded_mono_us = 0;
  int64_t eof_frame_us = 0;    // the sender said the main stream ended
  int64_t delivered_us = 0;    // the whole main stream was written to the destination
  uint64_t progress_sent = 0;  // main-stream bytes last reported in a "progress" event
  uint64_t bytes_out = 0;
};

// One verified record body on its way through the pool. With `inflate`, the body is
// exactly one ZFRAMES frame, `zframes`, and Run() decompresses it into `frames`.
struct BodyTask : OrderedWork::Task {
  Bytes body;
  bool inflate = false;
  wire::Frame zframes;  // its payload points into `body`
  Bytes frames;
  Status inflated;

  void Run() override {
    // One decompressor per thread that runs tasks (each worker; the data thread when
    // there are none), made once and reused for the thread's lifetime.
    thread_local encode::ZstdDecompressor zstd(wire::kMaxRecordBody);
    inflated = core::DestCore::Inflate(zframes, &zstd, &frames);
  }
};

// "30", "0.5": a duration in milliseconds as seconds, for messages.
std::string Seconds(int ms) {
  char buf[32];
  snprintf(buf, sizeof(buf), ms % 1000 ? "%.1f" : "%.0f", ms / 1000.0);
  return buf;
}

// The bytes of distinct pages one session may store: --max-store, else half the host's RAM.
uint64_t MaxStore(const ReceiverOptions& o) {
  if (o.max_store) return o.max_store;
  return uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE)) / 2;
}

// Where a session's pages go once page_ram of them are in RAM.
index::PageStore::Options StoreOptions(const ReceiverOptions& o) {
  return {.resident_bytes = o.page_ram, .spill_dir = SpillDir(o)};
}

// True when `body` holds exactly one frame, a ZFRAMES frame, returned in *f.
bool IsOneZFrames(ByteView body, wire::Frame* f) {
  wire::FrameReader reader(body);
  auto first = reader.Next(f);
  return first.ok() && *first && f->type == wire::FrameType::kZFrames &&
         reader.offset() == body.size();
}

class Session : public core::DestCore::Output {
 public:
  Session(const ReceiverOptions& o, Result<DestMap> dests, net::Fd fd,
          const wire::SessionKeys& keys, uint16_t features, store::CacheDrain* drain,
          store::PageCache* cache)
      : opt_(o),
        drain_(drain),
        cache_(cache),
        dests_(std::move(dests)),
        net_(std::move(fd)),
        sealer_(keys.s2c),
        opener_(keys.c2s),
        writer_(&sealer_),
        core_(features, MaxStore(o), StoreOptions(o)),
        work_(o.threads),
        max_queued_(2 * size_t(o.threads) + 2) {}
  Status Run();

 private:
  Status Step();
  Status OnNetReadable();
  Status Pump();
  void End(Status why);
  Result<bool> TakeBody();
  Status HandleDone();
  Result<bool> Continue();
  bool MustWait(const wire::Frame& f) const;
  void CheckStalled(DestVm& vm, uint16_t id, int64_t now);
  void TryConnect(DestVm& vm, uint16_t id, int64_t now);
  static void TuneDestSocket(DestChannel& c);
  Status CheckIdle(bool reading, int64_t now);
  Status OnStreamBytes(const wire::Frame& f, ByteView bytes) override;
  Status OnControl(const wire::Frame& f) override;
  Result<ByteView> OnCref(uint32_t cref, ByteView key) override;
  void SendSummary();
  void Seed();
  Result<bool> ResolveCref(const wire::Frame& f);
  Status TakeHeld();
  Result<bool> HoldsFill(BodyTask& t);
  Status OpenVm(uint16_t id, ByteView json_bytes);
  Status OpenChannel(DestVm& vm, uint16_t id, uint8_t ch);
  Status Deliver(DestVm& vm, uint16_t id, uint8_t ch, ByteView bytes);
  void WriteDest(DestVm& vm, uint16_t id, uint8_t ch);
  void ReadDest(DestVm& vm, uint16_t id, uint8_t ch);
  void CheckLoaded(DestVm& vm, uint16_t id);
  void ReportProgress(DestVm& vm, uint16_t id);
  void FailVm(DestVm& vm, uint16_t id, const std::string& why);
  void Event(uint16_t id, const json& ev);
  Status Send();
  void Log(const std::string& s) {
    if (opt_.verbose) fprintf(stderr, "gangmig receive: %s\n", s.c_str());
  }

  const ReceiverOptions& opt_;
  store::CacheDrain* drain_;  // null: no page cache
  store::PageCache* cache_;   // null: no page cache
  // CREF resolution: the content of the next CREF once found (in the cache, or in the
  // sender's FILL); the CREF a NEED was sent for and whose FILL is awaited; bodies read
  // past that CREF while waiting (backlog_ once the FILL came), at most kMaxHeldBytes.
  std::optional<uint32_t> ready_cref_;
  uint8_t ready_page_[wire::kPageSize];
  std::optional<uint32_t> waiting_;
  Bytes waiting_key_;
  std::set<uint32_t> needed_;  // CREFs a NEED was sent for
  std::deque<std::unique_ptr<BodyTask>> held_;
  size_t held_bytes_ = 0;
  uint32_t acked_ = 0;  // CACHE_ACK sent up to here
  uint64_t summary_bytes_ = 0, cache_hits_ = 0, cache_misses_ = 0;
  static constexpr size_t kMaxHeldBytes = 64u << 20;
  index::Sha256Pages fingerprinter_;
  Result<DestMap> dests_;  // read at the session's start (or why it could not be)
  net::Fd net_;
  wire::RecordSealer sealer_;
  wire::RecordOpener opener_;
  wire::RecordWriter writer_;
  net::OutQueue net_out_;
  std::vector<std::unique_ptr<DestVm>> vms_;
  core::DestCore core_;
  OrderedWork work_;   // bodies between the opener and the core, in arrival order
  size_t max_queued_;  // bodies the pool may hold before the link is left unread
  std::vector<std::unique_ptr<BodyTask>> spare_;  // handled tasks, their buffers reused
  // The body being handed to the core frame by frame, and where its next frame is.
  std::unique_ptr<BodyTask> current_;
  wire::FrameReader reader_{ByteView()};
  bool begun_ = false;
  uint64_t queued_ = 0;         // bytes queued towards all destinations of the session
  bool ending_ = false;         // no more bodies come: end with end_ once all are handled
  bool record_failed_ = false;  // ... because a record failed (nothing after it counts)
  Status end_;
  int64_t last_recv_us_ = MonotonicMicros();  // the link last gave us bytes (monotonic)
  int64_t last_send_us_ = MonotonicMicros();  // we last sealed a record for the sender
};

void Session::Event(uint16_t id, const json& ev) {
  wire::AppendVmEvent(writer_.frames(), id, ev.dump());
}

void Session::FailVm(DestVm& vm, uint16_t id, const std::string& why) {
  if (vm.failed) return;
  vm.failed = true;
  for (auto& c : vm.channels) {
    c.fd.Reset();  // an incomplete stream: QEMU refuses to run it
    queued_ -= c.out.size();
    c.out = net::OutQueue();
  }
  if (!vm.reported) Event(id, {{"event", "failed"}, {"error", why}});
  vm.reported = true;
  Log("vm " + vm.name + ": failed: " + why);
}

Status Session::OpenVm(uint16_t id, ByteView json_bytes) {
  if (id != vms_.size())
    return Status::Error("VM_OPEN for vm id " + std::to_string(id) + " out of order (expected " +
                         std::to_string(vms_.size()) + ")");
  auto open = wire::ParseVmOpen(json_bytes);
  if (!open.ok()) return open.status().WithContext("vm id " + std::to_string(id));
  auto vm = std::make_unique<DestVm>();
  vm->name = open->name;
  vms_.push_back(std::move(vm));
  DestVm& v = *vms_.back();
  // The receiver host decides where a VM goes, never the sender.
  auto dest = dests_.ok() ? dests_->Resolve(v.name) : Result<Destination>(dests_.status());
  if (!dest.ok()) {
    FailVm(v, id, dest.status().message());
    return Status::Ok();
  }
  v.dest = dest->address;
  v.dest_qmp = dest->qmp;
  if (!v.dest_qmp.empty()) {
    auto client = qmp::Client::Connect(v.dest_qmp, timeouts::kQmpMs);
    if (!client.ok()) {
      FailVm(v, id, "destination QMP: " + client.status().message());
      return Status::Ok();
    }
    v.monitor = std::make_unique<VmMonitor>(std::move(client).value(), 100);
    v.monitor->EnableMigrationEvents();
  }
  Status st = OpenChannel(v, id, 0);
  if (!st.ok()) {
    FailVm(v, id, st.message());
    return Status::Ok();
  }
  Event(id, {{"event", "ready"}});
  if (!v.channels[0].connect_deadline_us) Log("vm " + v.name + ": connected to destination " + v.dest);
  return Status::Ok();
}

Status Session::OpenChannel(DestVm& vm, uint16_t id, uint8_t ch) {
  if (ch != vm.channels.size())
    return Status::Error("CHANNEL_OPEN for channel " + std::to_string(ch) + " of vm " + vm.name +
                         " out of order");
  auto addr = net::ParseAddress(vm.dest);
  if (!addr.ok()) return addr.status();
  DestChannel c;
  // QEMU takes the first connection as the main channel and the next ones as multifd
  // channels, so they must connect in order: behind a channel still waiting for its
  // destination (--dest-wait), a new one waits too.
  bool earlier_waiting = false;
  for (const DestChannel& e : vm.channels) earlier_waiting = earlier_waiting || e.connect_deadline_us;
  auto fd = earlier_waiting ? Result<net::Fd>(Status::Error("an earlier channel is not connected yet"))
                            : net::Connect(*addr, timeouts::kDestinationConnectMs);
  if (!fd.ok()) {
    if (opt_.dest_wait_ms <= 0) return fd.status().WithContext("destination QEMU");
    // Not there yet: the session goes on, and the loop tries again (TryConnect).
    int64_t now = MonotonicMicros();
    c.connect_deadline_us = now + opt_.dest_wait_ms * 1000LL;
    c.next_try_us = earlier_waiting ? now : now + kConnectRetryUs;
    c.connect_error = fd.status().message();
    vm.channels.push_back(std::move(c));
    if (!earlier_waiting)
      Log("vm " + vm.name + ": destination " + vm.dest + " not there yet; waiting up to " +
          Seconds(opt_.dest_wait_ms) + " s (--dest-wait)");
    return Status::Ok();
  }
  c.fd = std::move(fd).value();
  TuneDestSocket(c);
  vm.channels.push_back(std::move(c));
  return Status::Ok();
}

// A deeper socket buffer towards QEMU means fewer, larger writes and wake-ups; the
// queue in front of it stays bounded by max_buffer.
void Session::TuneDestSocket(DestChannel& c) {
  int sndbuf = 1 << 20;
  setsockopt(c.fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

// --dest-wait: a channel whose destination was not there is tried again every
// kConnectRetryUs; past its deadline the VM fails with the last error. Channels connect
// in their order (QEMU takes the first connection as the main channel): one that waits
// holds back those after it.
void Session::TryConnect(DestVm& vm, uint16_t id, int64_t now) {
  if (vm.failed) return;
  for (DestChannel& c : vm.channels) {
    if (!c.connect_deadline_us) continue;
    if (now < c.next_try_us) return;
    if (vm.dest.rfind("unix:", 0) == 0) {  // what appeared must be a socket, not a link
      std::string why = NotASocket(vm.dest.substr(5));
      if (!why.empty() && why != "does not exist") {
        FailVm(vm, id, "destination " + vm.dest.substr(5) + " " + why);
        return;
      }
    }
    auto fd = net::Connect(*net::ParseAddress(vm.dest), 100);
    if (fd.ok()) {
      c.fd = std::move(fd).value();
      TuneDestSocket(c);
      c.connect_deadline_us = 0;
      c.progress_us = now;  // the stall clock starts now
      Log("vm " + vm.name + ": connected to destination " + vm.dest);
      continue;
    }
    c.connect_error = fd.status().message();
    if (now >= c.connect_deadline_us) {
      FailVm(vm, id,
             "destination QEMU: " + c.connect_error + " (still, after waiting " +
                 Seconds(opt_.dest_wait_ms) + " s: --dest-wait)");
      return;
    }
    c.next_try_us = now + kConnectRetryUs;
    return;
  }
}

Status Session::Deliver(DestVm& vm, uint16_t id, uint8_t ch, ByteView bytes) {
  if (vm.failed) return Status::Ok();  // the sender learns of it from our event
  if (ch >= vm.channels.size())
    return Status::Error("frame for channel " + std::to_string(ch) + " of vm " + vm.name +
                         " that was never opened");
  DestChannel& c = vm.channels[ch];
  if (c.eof_pending)
    return Status::Error("data for vm " + vm.name + " channel " + std::to_string(ch) +
                         " after its end");
  if (c.out.empty()) c.progress_us = MonotonicMicros();
  c.out.Append(bytes);
  queued_ += bytes.size();
  vm.bytes_out += bytes.size();
  TeeStream("receiver", id, ch, bytes);
  return Status::Ok();
}

Status Session::OnStreamBytes(const wire::Frame& f, ByteView bytes) {
  // A page content the session had not seen (PAGE, or DELTA's result) goes to the cache.
  if (drain_ && (f.type == wire::FrameType::kPage || f.type == wire::FrameType::kDelta))
    drain_->Offer(bytes);
  if (f.vm >= vms_.size())
    return Status::Error("frame for vm id " + std::to_string(f.vm) + " that was never opened");
  return Deliver(*vms_[f.vm], f.vm, f.channel, bytes);
}

Status Session::OnControl(const wire::Frame& f) {
  using wire::FrameType;
  switch (f.type) {
    case FrameType::kVmOpen:
      return OpenVm(f.vm, f.payload);
    case FrameType::kAbort:
      return Status::Error("sender aborted: " + std::string(AsChars(f.payload)));
    case FrameType::kGoodbye:
    case FrameType::kPing:
      return Status::Ok();
    case FrameType::kFill:  // taken when it was read (HoldsFill); here only in its place
      if (!needed_.count(f.page_id))
        return Status::Error("FILL for CREF " + std::to_string(f.page_id) +
                             ", which the receiver did not ask for");
      return Status::Ok();
    default:
      break;
  }
  if (f.vm >= vms_.size())
    return Status::Error("frame for vm id " + std::to_string(f.vm) + " that was never opened");
  DestVm& vm = *vms_[f.vm];
  switch (f.type) {
    case FrameType::kChannelOpen: {
      if (vm.failed) return Status::Ok();
      Status st = OpenChannel(vm, f.vm, f.channel);
      if (!st.ok()) FailVm(vm, f.vm, st.message());
      return Status::Ok();
    }
    case FrameType::kChannelEof:
      if (vm.failed) return Status::Ok();
      if (f.channel >= vm.channels.size())
        return Status::Error("CHANNEL_EOF for unknown channel " + std::to_string(f.channel) +
                             " of vm " + vm.name);
      vm.channels[f.channel].eof_pending = true;
      if (f.channel == 0) vm.eof_frame_us = WallMicros();
      return Status::Ok();
    default:
      return Status::Error("unexpected frame type " + std::to_string(int(f.type)) +
                           " from the sender");
  }
}

// --seed-from: the RAM of VMs already running on this host goes into the cache before
// the summary is made, so pages they hold need not cross. Read again for every session
// (their memory changes); a file that cannot be read is logged and skipped.
void Session::Seed() {
  for (const std::string& path : opt_.seed_from) {
    int64_t start = MonotonicMicros();
    auto added = store::ImportFile(cache_, path);
    if (!added.ok()) {
      Log("page cache: not seeded from " + path + ": " + added.status().message());
      continue;
    }
    char secs[32];
    snprintf(secs, sizeof(secs), "%.2f", double(MonotonicMicros() - start) / 1e6);
    Log("page cache: seeded " + std::to_string(*added) + " new pages from " + path + " in " +
        secs + " s");
  }
}

// The first frames of a session with the page cache: the summary of what the cache
// holds, in pieces that fit a record, so the sender can name pages it may hold by
// SHA-256 instead of sending them.
void Session::SendSummary() {
  if (!cache_ || !core_.cache()) return;
  Seed();
  index::PageSummary s = index::PageSummary::ForPages(cache_->stats().entries);
  cache_->ForEachFastHash([&s](uint64_t h) { s.Add(h); });
  constexpr size_t kPiece = 512 * 1024;
  for (size_t at = 0; at < s.bits().size(); at += kPiece) {
    size_t n = std::min(kPiece, s.bits().size() - at);
    wire::AppendSummary(writer_.frames(), s.probes(), s.log2_bits(), uint32_t(at),
                        ByteView(s.bits().data() + at, n));
  }
  summary_bytes_ = s.bits().size();
  Log("page cache: summary of " + std::to_string(cache_->stats().entries) + " pages, " +
      std::to_string(summary_bytes_ >> 10) + " KiB");
}

// Finds the content of CREF frame `f` (the next CREF) before the core takes it: in the
// cache, or, failing that, asks the sender for it (NEED) once. true: ready_page_ holds it.
Result<bool> Session::ResolveCref(const wire::Frame& f) {
  uint32_t cref = core_.crefs();
  if (ready_cref_ == cref) return true;
  if (waiting_) return false;
  if (cache_) {
    index::Digest key;
    std::memcpy(key.bytes.data(), f.payload.data(), key.bytes.size());
    auto got = cache_->Get(key, ready_page_);
    if (!got.ok()) Log("page cache: " + got.status().message());
    if (got.ok() && *got) {
      ready_cref_ = cref;
      ++cache_hits_;
      return true;
    }
  }
  // Not there (evicted since the summary, a false positive, a damaged entry): the sender
  // keeps what it named until CACHE_ACK, and sends it again as a FILL.
  wire::AppendNeed(writer_.frames(), cref);
  needed_.insert(cref);
  waiting_ = cref;
  waiting_key_.assign(f.payload.begin(), f.payload.end());
  ++cache_misses_;
  return false;
}

Result<ByteView> Session::OnCref(uint32_t cref, ByteView key) {
  if (ready_cref_ != cref) return Status::Error("CREF " + std::to_string(cref) + " unresolved");
  ready_cref_.reset();
  return ByteView(ready_page_, wire::kPageSize);
}

// While a FILL is awaited: the opener's bodies are held (in order, read past the CREF
// that waits) and searched for it. Once it came, they go through the pool as usual.
Status Session::TakeHeld() {
  while (waiting_) {
    if (held_bytes_ > kMaxHeldBytes)
      return Status::Error("the sender did not answer NEED for CREF " + std::to_string(*waiting_) +
                           " within " + std::to_string(kMaxHeldBytes >> 20) + " MiB");
    auto t = std::make_unique<BodyTask>();
    auto more = opener_.Next(&t->body);
    if (!more.ok()) return more.status().WithContext("from sender");
    if (!*more) return Status::Ok();
    held_bytes_ += t->body.size();
    auto fill = HoldsFill(*t);
    held_.push_back(std::move(t));
    if (!fill.ok()) return fill.status();
  }
  return Status::Ok();
}

// Whether body `t` carries the FILL awaited (searched inside a ZFRAMES too); if so, its
// content, checked against the CREF's key, becomes ready and the wait ends.
Result<bool> Session::HoldsFill(BodyTask& t) {
  thread_local encode::ZstdDecompressor zstd(wire::kMaxRecordBody);
  Bytes inflated;
  ByteView frames = t.body;
  wire::Frame z;
  if (core_.zstd() && IsOneZFrames(t.body, &z)) {
    if (!core::DestCore::Inflate(z, &zstd, &inflated).ok()) return false;  // its turn will say why
    frames = inflated;
  }
  wire::FrameReader reader(frames);
  wire::Frame f;
  while (true) {
    auto next = reader.Next(&f);
    if (!next.ok() || !*next) return false;
    if (f.type != wire::FrameType::kFill || f.page_id != *waiting_) continue;
    index::Digest d = fingerprinter_.Of(f.payload);
    if (std::memcmp(d.bytes.data(), waiting_key_.data(), d.bytes.size()) != 0)
      return Status::Error("FILL for CREF " + std::to_string(f.page_id) +
                           " is not the page its key names");
    std::memcpy(ready_page_, f.payload.data(), wire::kPageSize);
    ready_cref_ = *waiting_;
    waiting_.reset();
    return true;
  }
}

Status Session::OnNetReadable() {
  static thread_local Bytes buf(256 * 1024);
  ssize_t n = read(net_.get(), buf.data(), buf.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return Status::Ok();
  if (n <= 0) {
    End(Status::Error("connection to the sender lost"));
    return Pump();
  }
  last_recv_us_ = MonotonicMicros();
  opener_.Feed(ByteView(buf.data(), size_t(n)));
  return Pump();
}

// The session ends with `why` once every body received before is handled. A record-layer
// error replaces a lost connection (it is why the bodies stopped).
void Session::End(Status why) {
  if (!ending_ || record_failed_) end_ = std::move(why);
  ending_ = true;
}

// Hands finished bodies to the core, and moves verified bodies from the opener into
// the pool while it has room. After End(), returns the end status once everything
// received before it is handled.
Status Session::Pump() {
  for (;;) {
    GANGMIG_RETURN_IF_ERROR(HandleDone());
    if (waiting_) {
      Status held = TakeHeld();
      if (!held.ok()) {
        record_failed_ = true;
        End(held);
        break;
      }
      if (waiting_) break;  // the link must bring the FILL
      continue;             // it came: the paused CREF goes on
    }
    if (current_ || work_.queued() >= max_queued_) break;
    auto more = TakeBody();
    if (!more.ok()) {
      record_failed_ = true;
      End(more.status());  // the bodies before the bad record are handled first
      continue;
    }
    if (!*more) break;
  }
  if (ending_ && !current_ && work_.queued() == 0) return end_;
  if (ending_ && waiting_) return end_;  // the awaited FILL can no longer come
  return Status::Ok();
}

// Submits the opener's next verified body to the pool: to be inflated when it is one
// ZFRAMES frame the core accepts (zstd agreed: that check comes before any zstd), else
// only to keep its place. false: no whole record is buffered, or the session is ending
// on a record-layer error (which repeats: nothing after it is taken).
Result<bool> Session::TakeBody() {
  if (record_failed_) return false;
  std::unique_ptr<BodyTask> t;
  if (!held_.empty() && !waiting_) {  // bodies read while a FILL was awaited come first
    t = std::move(held_.front());
    held_.pop_front();
    held_bytes_ -= t->body.size();
  } else {
    if (spare_.empty()) {
      t = std::make_unique<BodyTask>();
    } else {
      t = std::move(spare_.back());
      spare_.pop_back();
    }
    auto more = opener_.Next(&t->body);
    if (!more.ok() || !*more) {
      spare_.push_back(std::move(t));
      if (!more.ok()) return more.status().WithContext("from sender");
      return false;
    }
  }
  t->inflate = core_.zstd() && IsOneZFrames(t->body, &t->zframes);
  bool run = t->inflate;
  work_.Submit(std::move(t), run);
  return true;
}

// Hands the bodies the pool has finished to the core, oldest first, each frame by
// frame, until a frame must wait for its destination to take bytes.
Status Session::HandleDone() {
  for (;;) {
    if (current_) {
      auto finished = Continue();
      if (!finished.ok()) return finished.status();
      if (!*finished) return Status::Ok();
      spare_.push_back(std::move(current_));
    }
    std::unique_ptr<OrderedWork::Task> done = work_.PopDone(/*wait=*/false);
    if (!done) return Status::Ok();
    current_.reset(static_cast<BodyTask*>(done.release()));
    begun_ = false;
  }
}

// The stream bytes frame `f` puts in front of a destination (0: none).
size_t StreamBytesOf(const wire::Frame& f) {
  switch (f.type) {
    case wire::FrameType::kData:
      return f.payload.size();
    case wire::FrameType::kPage:
    case wire::FrameType::kRef:
    case wire::FrameType::kDelta:
    case wire::FrameType::kCref:
      return wire::kPageSize;
    default:
      return 0;
  }
}

// Whether `f` must wait: handing it over now would take its destination's queue past
// max_buffer, or every destination queue of the session together past
// max_session_buffer. Counted before the frame is expanded (a REF of 8 bytes is 4 KiB
// here). A frame always fits an empty queue of an otherwise empty session, so a frame
// larger than the bound still passes, alone.
bool Session::MustWait(const wire::Frame& f) const {
  size_t grow = StreamBytesOf(f);
  if (grow == 0 || f.vm >= vms_.size()) return false;
  const DestVm& vm = *vms_[f.vm];
  if (vm.failed || f.channel >= vm.channels.size()) return false;  // dropped, or an error
  size_t queued = vm.channels[f.channel].out.size();
  if (queued > 0 && queued + grow > opt_.max_buffer) return true;
  return queued_ > 0 && queued_ + grow > opt_.max_session_buffer;
}

// Hands the current body's next frames to the core. true: the body is done; false: a
// frame waits for room (MustWait); the reader keeps its place.
Result<bool> Session::Continue() {
  BodyTask& t = *current_;
  if (!begun_) {
    if (t.inflate) GANGMIG_RETURN_IF_ERROR(core_.BeginInflated(t.zframes, t.inflated, t.frames));
    reader_ = wire::FrameReader(t.inflate ? ByteView(t.frames) : ByteView(t.body));
    begun_ = true;
  }
  for (;;) {
    wire::FrameReader at = reader_;
    wire::Frame f;
    auto next = reader_.Next(&f);
    if (!next.ok()) return next.status().WithContext(t.inflate ? "in ZFRAMES" : "from sender");
    if (!*next) return true;
    if (MustWait(f)) {
      reader_ = at;  // read again when there is room
      return false;
    }
    if (f.type == wire::FrameType::kCref && core_.cache()) {
      auto ready = ResolveCref(f);
      if (!ready.ok()) return ready.status();
      if (!*ready) {
        reader_ = at;  // its FILL is on the way
        return false;
      }
    }
    if (t.inflate) {
      GANGMIG_RETURN_IF_ERROR(core_.OnInflatedFrame(f, this));
    } else if (f.type == wire::FrameType::kZFrames && core_.zstd()) {
      // The sender's compressor puts each ZFRAMES alone in its body (and only such a
      // body is inflated on the pool, then handed over frame by frame): a ZFRAMES among
      // other frames would have to expand all at once.
      return Status::Error("ZFRAMES must be the only frame of its record body");
    } else {
      GANGMIG_RETURN_IF_ERROR(core_.OnFrame(f, this));
    }
  }
}

void Session::WriteDest(DestVm& vm, uint16_t id, uint8_t ch) {
  DestChannel& c = vm.channels[ch];
  if (!c.out.empty()) {
    auto w = c.out.WriteTo(c.fd.get());
    if (!w.ok()) {
      FailVm(vm, id,
             "writing to the destination QEMU: " + w.status().message() +
                 " (did it reject the stream? see its log)");
      return;
    }
    c.written += *w;
    queued_ -= *w;
    if (*w > 0) c.progress_us = MonotonicMicros();
  }
  if (c.out.empty() && c.eof_pending && !c.write_shut) {
    shutdown(c.fd.get(), SHUT_WR);
    c.write_shut = true;
    if (ch == 0) vm.delivered_us = WallMicros();
  }
}

void Session::ReadDest(DestVm& vm, uint16_t id, uint8_t ch) {
  DestChannel& c = vm.channels[ch];
  uint8_t buf[64 * 1024];
  ssize_t n = read(c.fd.get(), buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) {
    wire::AppendRpData(writer_.frames(), id, ch, ByteView(buf, size_t(n)));
    return;
  }
  c.read_closed = true;
  wire::AppendRpEof(writer_.frames(), id, ch);
  if (ch != 0) return;
  // QEMU closes the main channel when it has loaded the stream. With a return path it
  // does so before the source closes its side (the source waits for our relayed SHUT),
  // so an empty queue is the sign of a complete load; QMP, if given, confirms it.
  if (!c.out.empty()) {
    FailVm(vm, id,
           "the destination QEMU closed the migration connection before the stream "
           "ended (it rejected the stream or exited; see its log)");
    return;
  }
  vm.loaded = true;
  vm.loaded_us = WallMicros();
  vm.loaded_mono_us = MonotonicMicros();
}

// Tells the sender how much of the main stream the destination has been given, so that
// it reads its source only as fast as the destination takes the stream in.
void Session::ReportProgress(DestVm& vm, uint16_t id) {
  if (vm.failed || vm.channels.empty()) return;
  uint64_t written = vm.channels[0].written;
  if (written - vm.progress_sent < kProgressEvery &&
      !(written > vm.progress_sent && vm.channels[0].out.empty()))
    return;
  vm.progress_sent = written;
  Event(id, {{"event", "progress"}, {"delivered", written}});
}

// After the main channel closed: asks the destination's QMP (if any) how the load went.
void Session::CheckLoaded(DestVm& vm, uint16_t id) {
  if (!vm.loaded || vm.reported || vm.failed) return;
  json ev = {{"event", "done"},
             {"loaded_us", vm.loaded_us},
             {"bytes", vm.bytes_out},
             {"eof_frame_us", vm.eof_frame_us},
             {"delivered_us", vm.delivered_us}};
  if (vm.monitor) {
    VmSnapshot s = vm.monitor->Snapshot();
    bool timeout = MonotonicMicros() - vm.loaded_mono_us > timeouts::kLoadSettleMs * 1000LL;
    if (s.qmp_lost) {
      FailVm(vm, id, "destination QEMU went away after the stream (" + s.qmp_error + ")");
      return;
    }
    if (s.migration_status == "failed") {
      FailVm(vm, id, "destination QEMU failed to load the stream");
      return;
    }
    bool settled = s.migration_status == "completed" &&
                   (s.run_status == "running" || s.run_status == "paused");
    if (!settled && !timeout) return;
    if (s.completed_us) ev["loaded_us"] = s.completed_us;  // QEMU's own timestamp
    if (s.run_status == "running") ev["resume_us"] = s.resume_us;
    ev["dest_status"] = s.run_status;
    ev["dest_migration"] = s.migration_status;
  }
  Event(id, ev);
  vm.reported = true;
  Log("vm " + vm.name + ": destination loaded " + std::to_string(vm.bytes_out) + " bytes");
}

Status Session::Send() {
  Bytes sealed;
  writer_.Flush(&sealed);
  if (!sealed.empty()) last_send_us_ = MonotonicMicros();
  net_out_.AppendOwned(std::move(sealed));
  auto w = net_out_.WriteTo(net_.get());
  if (w.ok()) return Status::Ok();
  if (ending_) {  // the sender is gone: still hand over what it sent before
    net_out_ = net::OutQueue();
    return Status::Ok();
  }
  return Status::Error("connection to the sender lost: " + w.status().message());
}

Status Session::Step() {
  std::vector<pollfd> fds;
  std::vector<std::pair<int, int>> slots;
  // The link is read only while the pool has room and no frame waits for a destination
  // (MustWait), so what we hold stays bounded whatever the sender sends.
  bool room = !ending_ && (waiting_ ? held_bytes_ <= kMaxHeldBytes
                                    : !current_ && work_.queued() < max_queued_);
  fds.push_back({net_.get(), short((room ? POLLIN : 0) | (net_out_.empty() ? 0 : POLLOUT)), 0});
  slots.push_back({-1, -1});
  if (work_.threads() > 0 && work_.queued() > 0) {
    fds.push_back({work_.wake_fd(), POLLIN, 0});
    slots.push_back({-2, -2});
  }
  for (size_t i = 0; i < vms_.size(); ++i) {
    DestVm& vm = *vms_[i];
    if (vm.failed) continue;
    for (size_t ch = 0; ch < vm.channels.size(); ++ch) {
      DestChannel& c = vm.channels[ch];
      if (c.connect_deadline_us) continue;  // not connected yet (TryConnect)
      short ev = c.read_closed ? 0 : POLLIN;
      if (!c.out.empty() || (c.eof_pending && !c.write_shut)) ev |= POLLOUT;
      if (!ev) continue;
      fds.push_back({c.fd.get(), ev, 0});
      slots.push_back({int(i), int(ch)});
    }
  }
  int rc = poll(fds.data(), fds.size(), 20);
  if (rc < 0 && errno != EINTR) return Status::Error("poll failed");
  for (size_t k = 0; rc > 0 && k < fds.size(); ++k) {
    short re = fds[k].revents;
    if (!re) continue;
    if (slots[k].first == -2) {
      work_.Rearm();  // before Pump below takes the finished bodies
      continue;
    }
    if (slots[k].first < 0) {
      if (re & (POLLIN | POLLHUP | POLLERR)) GANGMIG_RETURN_IF_ERROR(OnNetReadable());
      continue;
    }
    uint16_t id = uint16_t(slots[k].first);
    DestVm& vm = *vms_[id];
    uint8_t ch = uint8_t(slots[k].second);
    if (vm.failed) continue;
    if (re & POLLOUT) WriteDest(vm, id, ch);
    if (!vm.failed && (re & (POLLIN | POLLHUP | POLLERR))) ReadDest(vm, id, ch);
  }
  GANGMIG_RETURN_IF_ERROR(Pump());
  int64_t now = MonotonicMicros();
  for (size_t i = 0; i < vms_.size(); ++i) {
    TryConnect(*vms_[i], uint16_t(i), now);
    CheckStalled(*vms_[i], uint16_t(i), now);
    CheckLoaded(*vms_[i], uint16_t(i));
    ReportProgress(*vms_[i], uint16_t(i));
  }
  GANGMIG_RETURN_IF_ERROR(CheckIdle(room, now));
  if (core_.crefs() > acked_) {  // the sender may drop what it kept for these CREFs
    acked_ = core_.crefs();
    wire::AppendCacheAck(writer_.frames(), acked_);
  }
  if (now - last_send_us_ >= opt_.keepalive_ms * 1000LL) wire::AppendPing(writer_.frames());
  return Send();
}

// A destination that takes none of the bytes waiting for it for kDestinationStallMs
// (stopped, hung, or simply not reading) fails alone: its queue is dropped, so the
// frames behind it -- other VMs' -- move again.
void Session::CheckStalled(DestVm& vm, uint16_t id, int64_t now) {
  if (vm.failed) return;
  for (const DestChannel& c : vm.channels) {
    if (c.connect_deadline_us) continue;  // TryConnect has its own deadline
    bool waiting = !c.out.empty() || (c.eof_pending && !c.write_shut);
    if (!waiting || now - c.progress_us < opt_.dest_stall_ms * 1000LL) continue;
    FailVm(vm, id,
           "the destination QEMU took none of the " + std::to_string(c.out.size()) +
               " bytes waiting for it for " + Seconds(opt_.dest_stall_ms) +
               " s (stopped, hung or not reading)");
    return;
  }
}

// The sender sends at least a PING every kKeepaliveMs; nothing for kIdleMs while we
// were reading means the link or the sender is gone without a word. Time we spent not
// reading (waiting for a destination) does not count.
Status Session::CheckIdle(bool reading, int64_t now) {
  if (!reading) {
    last_recv_us_ = now;
    return Status::Ok();
  }
  if (now - last_recv_us_ < opt_.idle_ms * 1000LL) return Status::Ok();
  return Status::Error("no data from the sender for " + Seconds(opt_.idle_ms) +
                       " s (link stalled or sender stopped)");
}

Status Session::Run() {
  Log("session started (" + std::to_string(work_.threads()) + " decompression threads)");
  SendSummary();
  for (;;) {
    Status st = Step();
    if (!st.ok()) {
      for (size_t i = 0; i < vms_.size(); ++i) {
        DestVm& vm = *vms_[i];
        if (!vm.reported && !vm.failed) FailVm(vm, uint16_t(i), st.message());
      }
      wire::AppendAbort(writer_.frames(), st.message());
      (void)Send();
      return st;
    }
    bool all = core_.goodbye() && work_.queued() == 0 && !current_ && held_.empty();
    for (auto& vm : vms_) all = all && (vm->reported || vm->failed);
    if (all && net_out_.empty()) {
      const core::DestStats& d = core_.stats();
      Log("session finished: " + std::to_string(vms_.size()) + " VMs, " +
          std::to_string(core_.pages()) + " distinct pages received (" + std::to_string(d.pages) +
          " whole, " + std::to_string(d.deltas) + " as deltas; " + std::to_string(d.zframes) +
          " compressed bodies, " + std::to_string(d.zframes_bytes >> 10) + " KiB -> " +
          std::to_string(d.zframes_raw >> 10) + " KiB; pages held " +
          std::to_string(core_.bytes_held() >> 20) + " MiB in RAM, " +
          std::to_string(core_.bytes_spilled() >> 20) + " MiB spilled)" +
          (cache_ && core_.cache()
               ? "; page cache: " + std::to_string(cache_hits_) + " pages found, " +
                     std::to_string(cache_misses_) + " asked for again, " +
                     std::to_string(cache_->stats().corrupt) +
                     " damaged entries found and dropped since the receiver started"
               : std::string()) +
          (drain_ ? "; page cache: " + std::to_string(drain_->stats().offered) +
                        " pages offered since the receiver started, " +
                        std::to_string(drain_->stats().dropped) + " dropped (disk too slow)"
                  : std::string()));
      return Status::Ok();
    }
  }
}

}  // namespace

Status RunReceiveSession(const ReceiverOptions& options, net::Fd fd, const wire::SessionKeys& keys,
                         uint16_t features, store::CacheDrain* drain, store::PageCache* cache) {
  Session session(options, LoadDestMap(options), std::move(fd), keys, features, drain, cache);
  return session.Run();
}

}  // namespace gangmig::migrate
