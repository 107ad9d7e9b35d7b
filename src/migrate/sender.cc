// The sender pipeline, one thread for all data (a poll loop) plus, per VM, whatever
// drives its source (source_control.h; today a QMP monitor thread, vm_monitor.h):
//
//   1. connect to the receiver, authenticate (wire/handshake.h);
//   2. per VM: QMP checks, a private unix listener, VM_OPEN to the receiver, which
//      connects to that VM's destination QEMU and answers "ready" (nothing has started
//      on any source yet, so a bad destination costs nothing);
//   3. `migrate uri=unix:<listener>` on every source QEMU at once;
//   4. loop: read each QEMU stream (only while the link queue is below max_buffer, so
//      QEMU's bandwidth estimate reflects the real link), parse it (qemu_stream), turn
//      pages into PAGE or REF frames through the shared PageIndex, everything else into
//      DATA frames; seal frames into authenticated records; relay RP_DATA back to QEMU;
//   5. a VM is done when its source says "completed" and the receiver says its
//      destination loaded the whole stream;
//   6. on any failure: ABORT to the receiver, migrate_cancel + close on every source not
//      done, and `cont` where QEMU had already stopped the VM.
#include "migrate/sender.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <deque>
#include <future>
#include <memory>
#include <thread>

#include "base/clock.h"
#include "base/ordered_work.h"
#include "core/source_core.h"
#include "encode/frame_compressor.h"
#include "migrate/dest_map.h"
#include "migrate/progress.h"
#include "migrate/seal_pipeline.h"
#include "migrate/stream_tee.h"
#include "migrate/timeouts.h"
#include "migrate/source_control.h"
#include "migrate/vm_monitor.h"
#include "net/socket.h"
#include "qemu_stream/stream_parser.h"
#include "store/cache_drain.h"
#include "store/page_cache.h"
#include "wire/control.h"
#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/record.h"

namespace gangmig::migrate {

namespace {
volatile sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }
}  // namespace

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;  // no SA_RESTART: poll() returns at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool Interrupted() { return g_interrupted != 0; }

namespace {

using nlohmann::json;

constexpr size_t kReadChunk = 256 * 1024;

struct Channel {
  net::Fd fd;
  net::OutQueue to_qemu;  // return-path bytes
  bool read_closed = false;
  bool rp_eof = false;  // receiver says the destination closed its side
  bool write_shut = false;
};

// A source's rollback runs on a thread of its own, so that its QMP waits (cancel, settle,
// cont: up to ~20 s) never stall the other VMs' streams. The data thread hands the VM's
// QEMU sockets over and reads the outcome only once the thread has finished.
struct Rollback {
  std::thread thread;
  std::atomic<bool> done{false};
  RollbackOutcome result;  // read once done
  ~Rollback() {
    if (thread.joinable()) thread.join();
  }
};

struct Vm {
  VmSpec spec;
  VmReport* rep = nullptr;
  std::unique_ptr<SourceControl> control;  // who drives the source (QMP today)
  std::string listen_path;
  net::Fd listener;
  std::vector<Channel> channels;
  bool ready = false;                  // receiver connected to the destination
  bool dest_done = false;              // receiver: destination loaded everything
  bool source_done = false;            // source QEMU: "completed"
  bool finished = false;               // completed or failed, nothing more to do
  std::unique_ptr<Rollback> rollback;  // while a failed VM's source is being rolled back
  // End-to-end window: (main-stream offset, pages parsed up to it) after each read, and
  // how far the receiver has handed the stream to the destination (its "progress").
  std::deque<std::pair<uint64_t, uint64_t>> read_marks;
  uint64_t pages_acked = 0;  // pages the destination has been given
  uint64_t pages_read = 0;   // pages (with zero pages) parsed from the source so far
  int64_t last_read_mono_us = MonotonicMicros();  // the source's stream last gave bytes
  // A stream that joined the session by connecting (a proxy's stream, or a domain's disk
  // copy): no control reports its outcome (StreamSourceControl), the stream does. When
  // it joined; 0: a VM the sender set up itself.
  int64_t joined_mono_us = 0;
  bool disk_copy = false;      // NBD: relayed verbatim, its report says so
  int companion = -1;          // migrate --libvirt: a domain <-> its disk copy (vms_ index)
  // Return-path bytes for the channel the source has not connected yet: a destination
  // that speaks first (an NBD server's greeting) answers as soon as the receiver connects.
  Bytes early_rp;
  bool early_rp_eof = false;
};

// The disk copy (NBD) of domain NAME goes through NAME.disks.sock and is carried as the
// stream NAME.disks (libvirt: --disks-uri).
constexpr char kDisksSuffix[] = ".disks";

// migrate --libvirt --copy-storage-*: where domain `owner`'s disk copy (NBD) connects.
// Its stream joins the session (NAME.disks) only when it comes: a domain with no disk
// to copy never opens one.
struct DisksListener {
  size_t owner;
  std::string path;
  net::Fd fd;
};

class Sender {
 public:
  Sender(const SenderOptions& o, Report* r) : opt_(o), report_(r), compressor_(o.compression) {}
  Status Run();

 private:
  Status Connect();
  Status OpenCache();
  std::function<void(ByteView)> OnNewContent();
  Status PrepareVms();
  Status WaitAllReady();
  Status StartMigrations();
  Status Loop();
  Status Step(int timeout_ms);
  Status KeepAlive(bool reading);
  Status OnNetReadable();
  Status OnFrame(const wire::Frame& f);
  Status OnVmEvent(Vm& vm, const wire::VmEventMessage& ev);
  void AcceptChannels(Vm& vm, uint16_t id);
  void TakeJoins();
  int Join(JoinedStream j);
  void AcceptDisks(DisksListener& d);
  void AddChannel(Vm& vm, uint16_t id, net::Fd fd);
  bool LingerOver();
  void ReadChannel(Vm& vm, uint16_t id, uint8_t ch);
  void WriteChannel(Vm& vm, uint8_t ch);
  void CheckSources();
  bool Stopping(const Vm& vm, uint16_t id) const;
  void Fail(Vm& vm, const std::string& why);
  void RollBack(Vm& vm);
  void CollectRollbacks(bool wait);
  // Seals what is pending and queues the finished records for the link; `wait`: all of
  // them, including bodies still being compressed.
  void Flush(bool wait = false);
  size_t Queued() const;
  void UpdateVmReport(Vm& vm, uint16_t id);
  Status SendNow();
  void Finish();
  void ReportEncoding();
  void ShareLinkBytes();
  void MeasureLinkRate();

  const SenderOptions& opt_;
  Report* report_;
  std::vector<std::unique_ptr<Vm>> vms_;
  std::vector<DisksListener> disks_;
  net::Fd net_;
  std::unique_ptr<wire::RecordSealer> sealer_;
  std::unique_ptr<wire::RecordOpener> opener_;
  std::unique_ptr<wire::RecordWriter> writer_;
  net::OutQueue net_out_;
  uint16_t features_ = 0;  // agreed with the receiver
  std::unique_ptr<store::PageCache> cache_;  // migrate --cache
  std::unique_ptr<store::CacheDrain> drain_;  // after cache_: stops first
  std::string cache_error_;                   // why --cache is not used (busy)
  std::unique_ptr<core::SourceCore> core_;
  encode::FrameCompressor compressor_;
  std::unique_ptr<SealPipeline> seal_;  // between writer_ and net_out_
  int64_t rate_since_us_ = 0;           // MeasureLinkRate: start of the current window
  uint64_t rate_since_bytes_ = 0;
  double link_rate_ = 0;  // fastest the link was seen to take data, bytes/s
  Progress progress_{stderr, opt_.progress};
  std::string workdir_;
  bool own_workdir_ = false;
  std::string link_error_;
  int64_t last_recv_us_ = MonotonicMicros();    // the receiver's bytes last arrived
  int64_t last_frames_us_ = MonotonicMicros();  // we last had frames to send
  int64_t idle_since_us_ = MonotonicMicros();   // proxy: every VM done since (0: busy)
};

// Return-path bytes queued towards one source QEMU, at most: beyond, the link is left
// unread (a receiver cannot grow the sender's memory by sending them faster than QEMU
// takes them).
constexpr size_t kMaxReturnPathQueued = 8u << 20;

Status Sender::Connect() {
  auto addr = net::ParseAddress(opt_.receiver);
  if (!addr.ok()) return addr.status();
  // A receiver that is still starting refuses connections: retry, within one deadline.
  const int64_t deadline = MonotonicMicros() + timeouts::kReceiverConnectMs * 1000LL;
  auto left_ms = [deadline] {
    return int(std::max<int64_t>(1, (deadline - MonotonicMicros()) / 1000));
  };
  // A busy receiver (too many handshakes in progress: idle strangers, say) closes new
  // connections at once: retry the handshake too, within the same deadline. Only an
  // answer that fails the checks (wrong key, version) is final.
  std::unique_ptr<wire::ClientHandshake> hs;
  Result<Bytes> proof = Status::Error("no handshake");
  for (;;) {
    auto fd = net::Connect(*addr, left_ms());
    Status st = fd.status();
    if (fd.ok()) {
      net_ = std::move(fd).value();
      // Keep little unsent data in the kernel: our own bounded queue (max_buffer) is
      // then what stands between QEMU and the link, and QEMU's bandwidth estimate stays
      // honest.
      int lowat = 128 * 1024;
      setsockopt(net_.get(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
      hs = std::make_unique<wire::ClientHandshake>(opt_.key, opt_.features);
      st = net::WriteFull(net_.get(), hs->Hello(), left_ms());
      // The header first: a receiver of another version sends only that, then closes.
      Bytes server_hello(wire::kServerHelloSize);
      if (st.ok()) st = net::ReadFull(net_.get(), server_hello.data(), wire::kHelloHeaderSize, left_ms());
      if (st.ok() && wire::IsOtherVersion(server_hello))
        return wire::CheckHelloHeader(server_hello)
            .WithContext("receiver " + opt_.receiver + " (upgrade one end: both must speak the same version)");
      if (st.ok())
        st = net::ReadFull(net_.get(), server_hello.data() + wire::kHelloHeaderSize,
                           server_hello.size() - wire::kHelloHeaderSize, left_ms());
      if (st.ok()) {
        proof = hs->OnServerHello(server_hello);
        if (!proof.ok()) return proof.status().WithContext("receiver " + opt_.receiver);
        break;
      }
      st = st.WithContext("handshake");
    }
    if (MonotonicMicros() + 200000 >= deadline) return st.WithContext("receiver " + opt_.receiver);
    usleep(200000);
  }
  GANGMIG_RETURN_IF_ERROR(net::WriteFull(net_.get(), *proof, left_ms()));
  const wire::ClientHandshake& handshake = *hs;
  sealer_ = std::make_unique<wire::RecordSealer>(handshake.keys().c2s);
  opener_ = std::make_unique<wire::RecordOpener>(handshake.keys().s2c);
  features_ = handshake.agreed();
  int threads = opt_.threads >= 0 ? opt_.threads : OrderedWork::DefaultThreads();
  seal_ = std::make_unique<SealPipeline>(
      sealer_.get(), (features_ & wire::kFeatureZstd) ? &compressor_ : nullptr, threads, &net_out_);
  writer_ = std::make_unique<wire::RecordWriter>(seal_.get());
  if (uint16_t missing = opt_.required_features & ~features_) {
    std::string why = "the receiver does not support " + wire::FeatureNames(missing) +
                      ", which this migration requires (upgrade the receiver, or let "
                      "--compress and --delta default to auto)";
    wire::AppendAbort(writer_->frames(), why);
    Flush(/*wait=*/true);
    (void)SendNow();
    writer_.reset();  // nothing more goes to this receiver
    return Status::Error(why);
  }
  core_ = std::make_unique<core::SourceCore>(
      core::SourceOptions{.index = {.copy_budget_bytes = opt_.verify_copies,
                                    .seed = index::PageIndex::RandomSeed(),
                                    .copies = {.resident_bytes = opt_.page_ram,
                                               .spill_dir = opt_.spill_dir},
                                    .drop_copies = opt_.spill_dir.empty()},
                          .delta = (features_ & wire::kFeatureDelta) != 0,
                          .dest_cache = (features_ & wire::kFeatureCache) != 0,
                          .on_new_content = OnNewContent()},
      writer_->frames());
  // Sent record buffers come back to the writer (RecordWriter::SealIfFull swaps a full
  // record with the empty spare), so frames are built in warm memory, not fresh pages.
  net_out_.KeepSpares(2);
  return Status::Ok();
}

// A listening unix socket at `path`. A stale socket file there is replaced, but never
// one another process serves (a gangmig proxy for the same directory, say): taking it
// over would cut that one off.
Status ListenAt(const std::string& path, net::Fd* out) {
  if (NotASocket(path).empty() && net::UnixSocketInUse(path))
    return Status::Error(path + " is in use by another process (a gangmig proxy serving this "
                         "directory?): give --socket-dir another directory, or let the proxy "
                         "carry the migration");
  auto l = net::Listen(net::Address{net::Address::Kind::kUnix, path, "", 0});
  if (!l.ok()) return l.status();
  *out = std::move(l).value();
  return Status::Ok();
}

Status Sender::PrepareVms() {
  if (opt_.workdir.empty()) {
    char tmpl[] = "/tmp/gangmig-XXXXXX";
    if (!mkdtemp(tmpl)) return Status::Error("cannot create a work directory in /tmp");
    workdir_ = tmpl;
    own_workdir_ = true;
  } else {
    workdir_ = opt_.workdir;
  }
  // Every source is checked side by side (each asks QMP or libvirt, a round trip or
  // two): a gang's start does not grow with its size.
  std::vector<std::unique_ptr<SourceControl>> controls;
  std::vector<std::future<Status>> checks;
  for (const VmSpec& spec : opt_.vms) {
    if (opt_.libvirt) {
      controls.push_back(std::make_unique<LibvirtSourceControl>(spec.name, *opt_.libvirt));
    } else {
      controls.push_back(std::make_unique<QmpSourceControl>(spec.qmp));
    }
    checks.push_back(std::async(std::launch::async, [c = controls.back().get()] { return c->Prepare(); }));
  }
  Status first_error;
  for (size_t i = 0; i < checks.size(); ++i) {
    Status prepared = checks[i].get();
    if (!prepared.ok() && first_error.ok()) first_error = prepared.WithContext("vm " + opt_.vms[i].name);
  }
  if (!first_error.ok()) return first_error;
  for (size_t i = 0; i < opt_.vms.size(); ++i) {
    auto vm = std::make_unique<Vm>();
    vm->spec = opt_.vms[i];
    vm->rep = &report_->vms[i];
    vm->control = std::move(controls[i]);
    if (opt_.libvirt) {
      // The same path on both hosts: libvirt's destination QEMU listens there.
      vm->listen_path = opt_.socket_dir + "/" + vm->spec.name + ".sock";
    } else {
      vm->listen_path = workdir_ + "/vm" + std::to_string(i) + ".sock";
    }
    GANGMIG_RETURN_IF_ERROR(ListenAt(vm->listen_path, &vm->listener).WithContext("vm " + vm->spec.name));
    wire::AppendVmOpen(writer_->frames(), uint16_t(vms_.size()),
                       wire::SerializeVmOpen({vm->spec.name}));
    vms_.push_back(std::move(vm));
  }
  // The disk copies: libvirt connects the source's NBD client to NAME.disks.sock
  // (--disks-uri), once per disk, and the destination's NBD server listens there on its host.
  for (size_t owner = 0; opt_.libvirt && opt_.libvirt->copy_storage && owner < opt_.vms.size(); ++owner) {
    DisksListener d{owner, DisksSocketPath(vms_[owner]->listen_path), {}};
    GANGMIG_RETURN_IF_ERROR(ListenAt(d.path, &d.fd).WithContext("vm " + vms_[owner]->spec.name + kDisksSuffix));
    disks_.push_back(std::move(d));
  }
  Flush(/*wait=*/true);
  return SendNow();
}

Status Sender::WaitAllReady() {
  int64_t deadline = MonotonicMicros() + timeouts::kDestinationsReadyMs * 1000LL;
  for (;;) {
    bool all = true;
    for (auto& vm : vms_) {
      if (!vm->rep->error.empty())
        return Status::Error("vm " + vm->spec.name + ": " + vm->rep->error);
      all = all && vm->ready;
    }
    if (all) return Status::Ok();
    if (MonotonicMicros() > deadline)
      return Status::Error("receiver did not confirm the destinations within " +
                           std::to_string(timeouts::kDestinationsReadyMs / 1000) + " s");
    if (Interrupted()) return Status::Error("interrupted by a signal");
    GANGMIG_RETURN_IF_ERROR(Step(100));
  }
}

Status Sender::StartMigrations() {
  for (auto& vm : vms_) {
    vm->rep->start_us = WallMicros();
    Status started = vm->control->Start(vm->listen_path);
    if (!started.ok()) return started.WithContext("vm " + vm->spec.name);
    vm->rep->phase = "streaming";
  }
  return Status::Ok();
}

void Sender::AcceptChannels(Vm& vm, uint16_t id) {
  for (;;) {
    auto fd = net::Accept(vm.listener.get());
    if (!fd.ok() || !fd->valid()) return;
    AddChannel(vm, id, std::move(fd).value());
  }
}

// The source's next connection for VM `id`: channel 0 is its main stream, any further
// one (multifd) is relayed verbatim. What the destination already said on it is queued.
void Sender::AddChannel(Vm& vm, uint16_t id, net::Fd fd) {
  uint8_t ch = uint8_t(vm.channels.size());
  core_->OpenChannel(id, ch);
  if (ch > 0 && vm.rep->passthrough_reason.empty())
    vm.rep->passthrough_reason = "extra channels (multifd/postcopy-preempt) are relayed verbatim";
  Channel c;
  c.fd = std::move(fd);
  c.to_qemu.Append(vm.early_rp);
  c.rp_eof = vm.early_rp_eof;
  vm.early_rp.clear();
  vm.early_rp_eof = false;
  vm.channels.push_back(std::move(c));
}

// A disk copy connection of a domain: the first one opens NAME.disks, each further one
// (one per disk) is one more of its channels; all are relayed verbatim.
void Sender::AcceptDisks(DisksListener& d) {
  for (;;) {
    auto fd = net::Accept(d.fd.get());
    if (!fd.ok() || !fd->valid()) return;
    int disks = Join({vms_[d.owner]->spec.name + kDisksSuffix, std::move(fd).value()});
    if (disks >= 0) {
      vms_[d.owner]->companion = disks;
      vms_[size_t(disks)]->companion = int(d.owner);
    }
  }
}

// gangmig proxy: streams that connected to the proxy's sockets since the last look.
void Sender::TakeJoins() {
  for (JoinedStream& j : opt_.joins->Take()) Join(std::move(j));
}

// A stream for a VM of this name that is still under way is one more of its channels
// (multifd connects N+1 times to the same socket); otherwise it is a new VM of the
// session, announced to the receiver (VM_OPEN), and read once the receiver has its
// destination. The VM's index in vms_, or -1: refused (closing it fails that connection).
int Sender::Join(JoinedStream j) {
  for (size_t i = 0; i < vms_.size(); ++i) {
    Vm& vm = *vms_[i];
    if (vm.finished || vm.spec.name != j.name) continue;
    if (vm.channels.size() >= wire::kMaxChannels) {
      fprintf(stderr, "gangmig proxy: vm %s: more than %zu connections; one refused\n",
              j.name.c_str(), wire::kMaxChannels);
      return -1;
    }
    AddChannel(vm, uint16_t(i), std::move(j.fd));
    return int(i);
  }
  if (vms_.size() >= wire::kMaxVms) {
    fprintf(stderr, "gangmig proxy: vm %s: the session already has %zu VMs; stream refused\n",
            j.name.c_str(), wire::kMaxVms);
    return -1;
  }
  const std::string& name = j.name;
  uint16_t id = uint16_t(vms_.size());
  report_->vms.push_back(MakeVmReport(name));
  for (size_t i = 0; i < vms_.size(); ++i) vms_[i]->rep = &report_->vms[i];  // may have moved
  auto vm = std::make_unique<Vm>();
  vm->spec.name = name;
  vm->rep = &report_->vms.back();
  vm->control = std::make_unique<StreamSourceControl>();
  vm->joined_mono_us = MonotonicMicros();
  vm->disk_copy = name.size() > strlen(kDisksSuffix) &&
                  name.compare(name.size() - strlen(kDisksSuffix), std::string::npos, kDisksSuffix) == 0;
  vm->rep->start_us = WallMicros();
  vm->rep->phase = "streaming";
  wire::AppendVmOpen(writer_->frames(), id, wire::SerializeVmOpen({name}));
  AddChannel(*vm, id, std::move(j.fd));
  vms_.push_back(std::move(vm));
  idle_since_us_ = 0;
  return int(id);
}

// gangmig proxy: every VM is done and none joined for linger_ms; the queue is then
// closed, so a stream arriving later starts a new session.
bool Sender::LingerOver() {
  for (auto& vm : vms_)
    if (!vm->finished) return false;
  int64_t now = MonotonicMicros();
  if (idle_since_us_ == 0) idle_since_us_ = now;
  if (now - idle_since_us_ < int64_t(opt_.linger_ms) * 1000) return false;
  return opt_.joins->CloseIfEmpty();
}

void Sender::ReadChannel(Vm& vm, uint16_t id, uint8_t ch) {
  Channel& c = vm.channels[ch];
  static thread_local Bytes buf(kReadChunk);
  ssize_t n = read(c.fd.get(), buf.data(), buf.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    c.read_closed = true;
    if (ch == 0) vm.rep->source_eof_us = WallMicros();
    core_->Close(id, ch);
  } else {
    vm.rep->stream_bytes += uint64_t(n);
    vm.last_read_mono_us = MonotonicMicros();
    TeeStream("sender", id, ch, ByteView(buf.data(), size_t(n)));
    core_->Feed(id, ch, ByteView(buf.data(), size_t(n)));
    if (ch == 0) {
      const qemu_stream::ParserStats& ps = core_->parser(id).stats();
      vm.pages_read = ps.pages + ps.zero_pages;
      // The offset of what has gone out as frames: a page split across reads waits in
      // the parser, and the receiver cannot deliver what was not sent.
      uint64_t sent_offset = ps.bytes_in - core_->parser(id).held_back();
      vm.read_marks.emplace_back(sent_offset, vm.pages_read);
      vm.rep->source_last_data_us = WallMicros();
      if (!vm.rep->ram_end_us && core_->parser(id).stats().ram_end_started)
        vm.rep->ram_end_us = vm.rep->source_last_data_us;
    }
  }
  UpdateVmReport(vm, id);
  compressor_.SetBacklog(Queued());
  writer_->SealIfFull(nullptr);
  seal_->Collect(/*wait=*/false);
}

void Sender::UpdateVmReport(Vm& vm, uint16_t id) {
  const core::SourceVmStats& st = core_->stats(id);
  vm.rep->frame_bytes = st.frame_bytes;
  vm.rep->pages_sent = st.pages_sent;
  vm.rep->pages_referenced = st.pages_referenced;
  vm.rep->pages_delta = st.pages_delta;
  vm.rep->delta_bytes = st.delta_bytes;
  vm.rep->pages_cached = st.pages_cached;
  if (st.extra_channel_bytes) vm.rep->passthrough_bytes = st.extra_channel_bytes;
  const qemu_stream::StreamParser& parser = core_->parser(id);
  vm.rep->zero_pages = parser.stats().zero_pages;
  if (parser.mode() == qemu_stream::ParseMode::kPassThrough) {
    vm.rep->passthrough_reason =
        vm.disk_copy ? "disk copy (NBD), relayed verbatim" : parser.fallback_reason();
    vm.rep->passthrough_bytes = parser.stats().passthrough_bytes + st.extra_channel_bytes;
  }
}

void Sender::WriteChannel(Vm& vm, uint8_t ch) {
  Channel& c = vm.channels[ch];
  if (!c.to_qemu.empty()) {
    auto w = c.to_qemu.WriteTo(c.fd.get());
    if (!w.ok()) {
      c.to_qemu = net::OutQueue();
      c.write_shut = true;
      return;
    }
  }
  if (c.to_qemu.empty() && c.rp_eof && !c.write_shut) {
    shutdown(c.fd.get(), SHUT_WR);
    c.write_shut = true;
  }
}

Status Sender::OnVmEvent(Vm& vm, const wire::VmEventMessage& ev) {
  if (ev.event == "ready") {
    vm.ready = true;
  } else if (ev.event == "progress") {
    while (!vm.read_marks.empty() && vm.read_marks.front().first <= ev.delivered) {
      vm.pages_acked = vm.read_marks.front().second;
      vm.read_marks.pop_front();
    }
  } else if (ev.event == "done") {
    vm.dest_done = true;
    vm.rep->dest_loaded_us = ev.loaded_us;
    vm.rep->dest_resume_us = ev.resume_us;
    vm.rep->dest_eof_frame_us = ev.eof_frame_us;
    vm.rep->dest_delivered_us = ev.delivered_us;
  } else if (ev.event == "failed") {
    std::string err = "destination: " + ev.error;
    if (!vm.ready && vm.joined_mono_us == 0) {
      vm.rep->error = err;  // before any migration started: WaitAllReady reports it
    } else {
      Fail(vm, err);
    }
  }
  return Status::Ok();
}

Status Sender::OnFrame(const wire::Frame& f) {
  using wire::FrameType;
  if (!wire::MaySend(wire::Peer::kReceiver, f.type))
    return Status::Error(std::string("receiver sent a ") + wire::FrameTypeName(f.type) +
                         " frame, which only a sender may send");
  if (f.type == FrameType::kAbort)
    return Status::Error("receiver aborted: " + std::string(AsChars(f.payload)));
  if (f.type == FrameType::kGoodbye || f.type == FrameType::kPing) return Status::Ok();
  if (f.type == FrameType::kSummary || f.type == FrameType::kNeed ||
      f.type == FrameType::kCacheAck) {
    if (!core_ || !(features_ & wire::kFeatureCache))
      return Status::Error(std::string("receiver sent a ") + wire::FrameTypeName(f.type) +
                           " frame, but the page cache was not negotiated");
    if (f.type == FrameType::kSummary) return core_->OnSummary(f.payload);
    if (f.type == FrameType::kNeed) return core_->OnNeed(f.page_id);
    core_->OnCacheAck(f.page_id);
    return Status::Ok();
  }
  if (f.vm >= vms_.size())
    return Status::Error("receiver sent a frame for unknown vm id " + std::to_string(f.vm));
  Vm& vm = *vms_[f.vm];
  if (vm.finished) return Status::Ok();  // late frames for a VM already given up
  if (f.type == FrameType::kVmEvent) {
    auto ev = wire::ParseVmEvent(f.payload);
    if (!ev.ok()) return ev.status().WithContext("receiver sent a bad message");
    return OnVmEvent(vm, *ev);
  }
  if (f.type != FrameType::kRpData && f.type != FrameType::kRpEof)
    return Status::Error("receiver sent an unexpected frame type " + std::to_string(int(f.type)));
  if (f.channel == vm.channels.size()) {  // the destination spoke first (NBD)
    if (f.type == FrameType::kRpEof) {
      vm.early_rp_eof = true;
    } else if (vm.early_rp.size() + f.payload.size() > kMaxReturnPathQueued) {
      return Status::Error("receiver sent more than " + std::to_string(kMaxReturnPathQueued) +
                           " return-path bytes for channel " + std::to_string(f.channel) +
                           " of vm " + vm.spec.name + " before its source connected");
    } else {
      vm.early_rp.insert(vm.early_rp.end(), f.payload.begin(), f.payload.end());
      vm.rep->rp_bytes += f.payload.size();
    }
    return Status::Ok();
  }
  if (f.channel > vm.channels.size())
    return Status::Error("receiver sent return-path bytes for unknown channel " +
                         std::to_string(f.channel) + " of vm " + vm.spec.name);
  Channel& c = vm.channels[f.channel];
  if (f.type == FrameType::kRpData) {
    c.to_qemu.Append(f.payload);
    vm.rep->rp_bytes += f.payload.size();
  } else {
    c.rp_eof = true;
  }
  return Status::Ok();
}

Status Sender::OnNetReadable() {
  static thread_local Bytes buf(kReadChunk);
  ssize_t n = read(net_.get(), buf.data(), buf.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return Status::Ok();
  if (n <= 0) return Status::Error("connection to the receiver lost");
  last_recv_us_ = MonotonicMicros();
  report_->link_rx_bytes += uint64_t(n);
  opener_->Feed(ByteView(buf.data(), size_t(n)));
  return wire::ForEachFrame(opener_.get(), "from receiver",
                            [this](const wire::Frame& f) { return OnFrame(f); });
}

void Sender::Flush(bool wait) {
  compressor_.SetBacklog(Queued());
  writer_->Flush(nullptr);
  seal_->Collect(wait);
}

// Bytes on their way to the link: sealed, or still being compressed.
size_t Sender::Queued() const { return net_out_.size() + (seal_ ? seal_->pending_bytes() : 0); }

Status Sender::SendNow() {
  size_t before = net_out_.size();
  auto w = net_out_.WriteTo(net_.get());
  if (!w.ok()) return Status::Error("connection to the receiver lost: " + w.status().message());
  report_->link_tx_bytes += before - net_out_.size();
  return Status::Ok();
}

// One round of the event loop: poll every fd, move bytes, seal and send what is pending.
Status Sender::Step(int timeout_ms) {
  std::vector<pollfd> fds;
  struct Slot {
    int vm;
    int ch;
  };  // ch -1: listener
  std::vector<Slot> slots;
  // A VM whose source has stopped for switchover is in its downtime. Stopping VMs are
  // read first, and while one is, the others only while little waits for the link, so
  // stopped VMs' last bytes are not queued behind pre-copy traffic. The others are
  // never shut out: a VM can be stopped before we know it (its STOP event waits behind
  // a QMP query that QEMU answers only after it wrote its last round into our socket).
  bool room = Queued() < opt_.max_buffer;
  bool little_queued = Queued() < opt_.max_buffer / 4;
  std::vector<uint8_t> stopping(vms_.size(), 0);
  bool any_stopping = false;
  for (size_t i = 0; i < vms_.size(); ++i) {
    stopping[i] = !vms_[i]->finished && !vms_[i]->source_done && Stopping(*vms_[i], uint16_t(i));
    any_stopping = any_stopping || stopping[i];
  }
  bool rp_room = true;
  for (const auto& v : vms_)
    for (const Channel& c : v->channels) rp_room = rp_room && c.to_qemu.size() < kMaxReturnPathQueued;
  for (const auto& v : vms_) rp_room = rp_room && v->early_rp.size() < kMaxReturnPathQueued / 2;
  fds.push_back({net_.get(), short((rp_room ? POLLIN : 0) | (net_out_.empty() ? 0 : POLLOUT)), 0});
  slots.push_back({-1, -1});
  if (seal_->pending_bodies() > 0) {  // wakes us when a body is compressed
    fds.push_back({seal_->wake_fd(), POLLIN, 0});
    slots.push_back({-2, -1});
  }
  if (opt_.joins) {  // gangmig proxy: streams joining the session
    fds.push_back({opt_.joins->wake_fd(), POLLIN, 0});
    slots.push_back({-3, -1});
  }
  for (size_t k = 0; k < disks_.size(); ++k) {  // disk copies while their domain goes
    if (vms_[disks_[k].owner]->finished) disks_[k].fd.Reset();
    if (!disks_[k].fd.valid()) continue;
    fds.push_back({disks_[k].fd.get(), POLLIN, 0});
    slots.push_back({-4, int(k)});
  }
  std::vector<size_t> order;  // stopping VMs first: they are served first in each round
  for (size_t i = 0; i < vms_.size(); ++i)
    if (stopping[i]) order.push_back(i);
  for (size_t i = 0; i < vms_.size(); ++i)
    if (!stopping[i]) order.push_back(i);
  for (size_t i : order) {
    Vm& vm = *vms_[i];
    if (vm.finished) continue;
    if (vm.listener.valid()) {
      fds.push_back({vm.listener.get(), POLLIN, 0});
      slots.push_back({int(i), -1});
    }
    // Pages (zero pages too: each costs the destination a write) read from this source
    // but not yet given to its destination. Keeping them under --dest-window keeps the
    // rate QEMU measures equal to the rate its destination really takes pages in, so
    // QEMU's switchover estimate holds and no backlog is left to load in the downtime.
    bool window_open =
        opt_.dest_window_pages == 0 || vm.pages_read - vm.pages_acked < opt_.dest_window_pages;
    // A stream waits (in its socket) until the receiver has its destination.
    bool read_this = vm.ready && room && window_open &&
                     (stopping[i] || !any_stopping || little_queued);
    for (size_t ch = 0; ch < vm.channels.size(); ++ch) {
      Channel& c = vm.channels[ch];
      short ev = 0;
      if (!c.read_closed && read_this) ev |= POLLIN;
      if (!c.to_qemu.empty() || (c.rp_eof && !c.write_shut)) ev |= POLLOUT;
      if (!ev) continue;
      fds.push_back({c.fd.get(), ev, 0});
      slots.push_back({int(i), int(ch)});
    }
  }
  int rc = poll(fds.data(), fds.size(), timeout_ms);
  if (rc < 0 && errno != EINTR) return Status::Error("poll failed");
  for (size_t k = 0; rc > 0 && k < fds.size(); ++k) {
    short re = fds[k].revents;
    if (!re) continue;
    if (slots[k].vm == -2) continue;  // Flush() below collects the compressed bodies
    if (slots[k].vm == -3) {
      TakeJoins();  // after this loop's slots: they index vms_, which only grows
      continue;
    }
    if (slots[k].vm == -4) {
      AcceptDisks(disks_[size_t(slots[k].ch)]);
      continue;
    }
    if (slots[k].vm < 0) {
      if (re & (POLLIN | POLLHUP | POLLERR)) GANGMIG_RETURN_IF_ERROR(OnNetReadable());
      continue;
    }
    Vm& vm = *vms_[slots[k].vm];
    if (vm.finished) continue;  // failed meanwhile: its sockets are closed
    if (slots[k].ch < 0) {
      AcceptChannels(vm, uint16_t(slots[k].vm));
      continue;
    }
    uint8_t ch = uint8_t(slots[k].ch);
    if (re & POLLOUT) WriteChannel(vm, ch);
    if (!vm.finished && (re & (POLLIN | POLLHUP | POLLERR)))
      ReadChannel(vm, uint16_t(slots[k].vm), ch);
  }
  GANGMIG_RETURN_IF_ERROR(KeepAlive(rp_room));
  Flush();
  return SendNow();
}

// Sends a PING after kKeepaliveMs without frames to send, and gives up on a receiver
// that sent nothing (not even its PING) for kIdleMs while we were reading the link:
// the link is stalled or the receiver stopped, and the sources must be rolled back
// rather than wait forever.
Status Sender::KeepAlive(bool reading) {
  int64_t now = MonotonicMicros();
  if (writer_->pending() > 0) last_frames_us_ = now;
  if (now - last_frames_us_ >= timeouts::kKeepaliveMs * 1000LL) {
    wire::AppendPing(writer_->frames());
    last_frames_us_ = now;
  }
  if (!reading) last_recv_us_ = now;
  if (now - last_recv_us_ < timeouts::kIdleMs * 1000LL) return Status::Ok();
  return Status::Error("no data from the receiver for " + std::to_string(timeouts::kIdleMs / 1000) +
                       " s (link stalled or receiver stopped)");
}

// Stopped for switchover: QEMU's STOP event, or (sooner, and without QMP) the start of
// the RAM END section in the stream, which QEMU writes only after stopping the VM.
bool Sender::Stopping(const Vm& vm, uint16_t id) const {
  if (vm.control->StopUs() != 0) return true;
  return !vm.channels.empty() && core_->parser(id).stats().ram_end_started;
}

void Sender::CheckSources() {
  for (auto& vmp : vms_) {
    Vm& vm = *vmp;
    if (vm.finished) continue;
    VmSnapshot s = vm.control->Snapshot();
    if (vm.joined_mono_us) {
      // Nothing but the stream tells: the source stopped when its last round (RAM END)
      // began, and its part is done once it closed the main channel.
      s.stop_us = vm.rep->ram_end_us;
      if (!vm.channels.empty() && vm.channels[0].read_closed) s.migration_status = "completed";
    }
    if (vm.joined_mono_us) {
      int64_t now = MonotonicMicros();
      if (!vm.ready && now - vm.joined_mono_us > timeouts::kDestinationsReadyMs * 1000LL) {
        Fail(vm, "the receiver did not confirm the destination within " +
                     std::to_string(timeouts::kDestinationsReadyMs / 1000) + " s");
        continue;
      }
      if (now - vm.joined_mono_us > int64_t(opt_.timeout_s) * 1000000) {
        Fail(vm, "timed out after " + std::to_string(opt_.timeout_s) + " s");
        continue;
      }
    }
    if (s.stop_us && !vm.rep->stop_us) {
      vm.rep->stop_us = s.stop_us;
      vm.rep->stream_bytes_at_stop = vm.rep->stream_bytes;  // what remains is the last round
      vm.rep->frame_bytes_at_stop = vm.rep->frame_bytes;
    }
    if (s.qmp_lost) {
      Fail(vm, "lost the source QMP connection (" + s.qmp_error + ")");
      continue;
    }
    // A monitor that does not answer is only a fault when the stream is silent too: QEMU
    // writing its last round holds the lock QMP needs for as long as the link takes.
    int64_t mute_us = timeouts::kSourceMuteMs * 1000LL, now = MonotonicMicros();
    if (s.qmp_unanswered_since_us && now - s.qmp_unanswered_since_us > mute_us &&
        now - vm.last_read_mono_us > mute_us) {
      Fail(vm, "the source QEMU answered neither QMP nor its migration stream for " +
                   std::to_string(timeouts::kSourceMuteMs / 1000) + " s (" + s.qmp_error + ")");
      continue;
    }
    if (s.migration_status == "failed" || s.migration_status == "cancelled") {
      std::string desc = s.migration.value("error-desc", std::string());
      Fail(vm, "source QEMU reports migration " + s.migration_status +
                   (desc.empty() ? "" : ": " + desc));
      continue;
    }
    if (s.migration_status == "completed" && !vm.source_done) {
      vm.source_done = true;
      vm.rep->phase = "finishing";
      // libvirt's own figure; never QEMU's query-migrate "downtime", an estimate.
      vm.rep->manager_downtime_ms = s.manager_downtime_ms;
    }
    bool closed = !vm.channels.empty();
    for (auto& c : vm.channels) closed = closed && c.read_closed;
    if (vm.source_done && vm.dest_done && closed) {
      vm.finished = true;
      vm.rep->status = "completed";
      vm.rep->phase = "done";
      vm.rep->end_us = vm.rep->dest_resume_us ? vm.rep->dest_resume_us : vm.rep->dest_loaded_us;
      vm.rep->source_final_state = s.run_status;
      vm.rep->source_completed_us = s.completed_us;
    }
  }
}

// Marks one VM failed and makes sure its source keeps running.
void Sender::Fail(Vm& vm, const std::string& why) {
  if (vm.finished) return;
  vm.finished = true;
  vm.rep->status = "failed";
  vm.rep->phase = "failed";
  vm.rep->error = why;
  RollBack(vm);
  // A domain and its disk copy fail together (libvirt would abort the one whose partner
  // broke; closing it at once is sooner).
  if (vm.companion >= 0)
    Fail(*vms_[vm.companion], vm.disk_copy ? "its disk copy failed: " + why
                                           : "its domain's migration failed: " + why);
}

void Sender::RollBack(Vm& vm) {
  if (!vm.control) return;
  std::vector<net::Fd> fds;
  for (auto& c : vm.channels) {
    fds.push_back(std::move(c.fd));
    c.read_closed = c.write_shut = true;
  }
  vm.rollback = std::make_unique<Rollback>();
  Rollback* rb = vm.rollback.get();
  vm.rollback->thread = std::thread(
      [rb, control = vm.control.get(), fds = std::move(fds)]() mutable {
        rb->result = control->RollBack(std::move(fds));
        rb->done = true;
      });
}

// Merges finished rollbacks into their VMs' reports (all of them, waiting, if `wait`).
void Sender::CollectRollbacks(bool wait) {
  for (auto& vm : vms_) {
    if (!vm->rollback || (!wait && !vm->rollback->done)) continue;
    vm->rollback->thread.join();
    const RollbackOutcome& done = vm->rollback->result;
    vm->rep->error += done.outcome;
    if (!done.final_state.empty()) vm->rep->source_final_state = done.final_state;
    vm->rollback.reset();
  }
}

Status Sender::Loop() {
  int64_t deadline = MonotonicMicros() + int64_t(opt_.timeout_s) * 1000000;
  for (;;) {
    GANGMIG_RETURN_IF_ERROR(Step(20));
    CheckSources();
    CollectRollbacks(false);
    MeasureLinkRate();
    ShareLinkBytes();
    progress_.Update(report_->vms, report_->start_us);
    if (opt_.joins) {
      if (LingerOver()) return Status::Ok();
      if (Interrupted()) return Status::Error("interrupted by a signal");
      continue;  // each VM's own timeout applies (CheckSources)
    }
    bool all = true;
    for (auto& vm : vms_) all = all && vm->finished;
    if (all) return Status::Ok();
    if (MonotonicMicros() > deadline)
      return Status::Error("timed out after " + std::to_string(opt_.timeout_s) + " s");
    if (Interrupted()) return Status::Error("interrupted by a signal");
  }
}

void Sender::Finish() {
  if (net_.valid() && writer_) {
    wire::AppendGoodbye(writer_->frames());
    Flush(/*wait=*/true);
    (void)SendNow();
    for (int i = 0; i < 50 && !net_out_.empty(); ++i) {
      usleep(20000);
      (void)SendNow();
    }
  }
  if (own_workdir_ || opt_.libvirt) {
    for (auto& vm : vms_) unlink(vm->listen_path.c_str());
    for (auto& d : disks_) unlink(d.path.c_str());
  }
  if (own_workdir_) rmdir(workdir_.c_str());
}

// The fastest the link has taken data, over windows of 200 ms: what the compressor must
// keep up with for compression to cost no time (encode/frame_compressor.cc).
void Sender::MeasureLinkRate() {
  int64_t now = MonotonicMicros();
  if (rate_since_us_ == 0 || now - rate_since_us_ < 200000) {
    if (rate_since_us_ == 0) rate_since_us_ = now, rate_since_bytes_ = report_->link_tx_bytes;
    return;
  }
  double rate =
      double(report_->link_tx_bytes - rate_since_bytes_) * 1e6 / double(now - rate_since_us_);
  link_rate_ = std::max(link_rate_, rate);
  compressor_.SetLinkRate(link_rate_);
  rate_since_us_ = now;
  rate_since_bytes_ = report_->link_tx_bytes;
}

// Records mix every VM's frames and are compressed as a whole, so a VM's link bytes are
// its share of the frames times what the link actually carried.
void Sender::ShareLinkBytes() {
  uint64_t frames = 0;
  for (const VmReport& v : report_->vms) frames += v.frame_bytes;
  if (frames == 0) return;
  double per_frame_byte = double(report_->link_tx_bytes) / double(frames);
  for (VmReport& v : report_->vms) v.link_bytes = uint64_t(per_frame_byte * double(v.frame_bytes));
}

// What each encoding saved, for --report.
void Sender::ReportEncoding() {
  const encode::CompressionStats& z = compressor_.stats();
  ShareLinkBytes();
  uint64_t delta_pages = 0, delta_bytes = 0;
  for (VmReport& v : report_->vms) {
    delta_pages += v.pages_delta;
    delta_bytes += v.delta_bytes;
  }
  report_->extra["encoding"] = {
      {"features", wire::FeatureNames(features_)},
      {"zstd_bodies", z.bodies},
      {"zstd_compressed_bodies", z.compressed},
      {"zstd_raw_bytes", z.raw_in},
      {"zstd_out_bytes", z.zframes_out},
      {"zstd_saved_bytes", z.raw_in - z.zframes_out},
      {"zstd_cpu_seconds", z.cpu_seconds},
      {"zstd_skipped_link_idle", z.skipped_idle},
      {"link_rate_max_bytes_per_s", link_rate_},
      {"zstd_skipped_random", z.skipped_random},
      {"zstd_not_smaller", z.not_smaller},
      {"delta_pages", delta_pages},
      {"delta_bytes", delta_bytes},
      {"delta_saved_bytes",
       delta_pages * (wire::kPageFrameSize - wire::kDeltaHeaderSize) - delta_bytes}};
  if (!core_) return;
  if (features_ & wire::kFeatureCache) {
    uint64_t cached = 0;
    for (const VmReport& v : report_->vms) cached += v.pages_cached;
    report_->extra["dest_cache"] = {{"summary_bytes", core_->summary_bytes()},
                                    {"pages_cached", cached},
                                    {"pages_asked_again", core_->fills()}};
  }
  if (!cache_error_.empty()) report_->extra["source_cache"] = {{"error", cache_error_}};
  if (drain_) {
    store::DrainStats d = drain_->stats();
    report_->extra["source_cache"] = {{"dir", opt_.cache_dir},
                                      {"pages_offered", d.offered},
                                      {"pages_dropped", d.dropped}};
  }
  const index::PageIndex& idx = core_->index();
  report_->extra["sender_index"] = {{"distinct_pages", idx.size()},
                                    {"verify_bytes_held", idx.bytes_held()},
                                    {"verify_bytes_spilled", idx.bytes_spilled()},
                                    {"copy_errors", idx.stats().copy_errors},
                                    {"hash_collisions", idx.stats().hash_collisions},
                                    {"unlinked_pages", idx.stats().unlinked},
                                    {"sha256_pages", idx.stats().sha256_pages}};
}

// migrate --cache: opened before anything else, so a bad directory fails the migration
// before any VM is touched.
Status Sender::OpenCache() {
  if (opt_.cache_dir.empty()) return Status::Ok();
  auto opened = store::PageCache::Open(opt_.cache_dir, opt_.cache_size);
  if (!opened.ok()) {
    // Another gangmig (say, this host's receiver) holds the directory: the migration
    // goes on, only its pages are not kept. Any other problem is the operator's to fix.
    if (opened.status().message().find("is in use by another process") == std::string::npos)
      return opened.status().WithContext("--cache");
    cache_error_ = opened.status().message();
    fprintf(stderr, "gangmig migrate: warning: %s; the pages sent are not kept\n",
            cache_error_.c_str());
    return Status::Ok();
  }
  cache_ = std::move(opened).value();
  drain_ = std::make_unique<store::CacheDrain>(cache_.get());
  return Status::Ok();
}

std::function<void(ByteView)> Sender::OnNewContent() {
  if (!drain_) return nullptr;
  return [drain = drain_.get()](ByteView page) { drain->Offer(page); };
}

Status Sender::Run() {
  report_->mode = opt_.joins ? "proxy" : "gang";
  report_->start_us = WallMicros();
  double cpu_start = ProcessCpuSeconds();
  for (const VmSpec& s : opt_.vms) report_->vms.push_back(MakeVmReport(s.name));
  Status st = OpenCache();
  if (st.ok()) st = Connect();
  if (!opt_.joins) {
    if (st.ok()) st = PrepareVms();
    if (st.ok()) st = WaitAllReady();
    if (st.ok()) st = StartMigrations();
  }
  if (st.ok()) st = Loop();
  if (opt_.joins) {
    // Streams still waiting are never read: closing them fails their migrations at the
    // source, which keeps those VMs (listed here, so the log says which).
    for (JoinedStream& j : opt_.joins->Close()) {
      report_->vms.push_back(MakeVmReport(j.name));
      if (st.ok()) st = Status::Error("session ended before the stream was read");
    }
    for (size_t i = 0; i < vms_.size(); ++i) vms_[i]->rep = &report_->vms[i];
  }
  if (!st.ok()) {
    link_error_ = st.message();
    if (net_.valid() && writer_) {
      wire::AppendAbort(writer_->frames(), st.message());
      Flush(/*wait=*/true);
      (void)SendNow();
    }
    for (auto& vm : vms_) Fail(*vm, st.message());  // the rollbacks run side by side
    for (VmReport& v : report_->vms) {
      if (v.status != "pending") continue;
      v.status = "failed";
      v.error = st.message() + "; migration never started, source untouched";
    }
  }
  CollectRollbacks(true);
  progress_.Update(report_->vms, report_->start_us, true);
  Finish();
  report_->end_us = WallMicros();
  report_->cpu_seconds = ProcessCpuSeconds() - cpu_start;
  report_->peak_rss_kib = PeakRssKib();
  ReportEncoding();
  std::string failed;
  for (const VmReport& v : report_->vms) {
    if (v.status != "completed") failed += (failed.empty() ? "" : "; ") + v.name + ": " + v.error;
  }
  if (!st.ok()) report_->error = st.message();
  if (!failed.empty()) return Status::Error(failed);
  return Status::Ok();
}

}  // namespace

Status RunGangMigration(const SenderOptions& options, Report* report) {
  InstallInterruptHandler();
  Sender s(options, report);
  return s.Run();
}

}  // namespace gangmig::migrate
