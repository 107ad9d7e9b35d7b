// Flag parsing for migrate, receive and keygen. Every error names the flag and says what
// to do; exit codes: 0 success, 1 a migration/session failed, 2 bad usage.
#include "cli/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "base/bytes.h"
#include "base/ordered_work.h"
#include "cli/flags.h"
#include "migrate/direct.h"
#include "net/socket.h"
#include "migrate/proxy.h"
#include "migrate/receiver.h"
#include "migrate/report.h"
#include "migrate/sender.h"
#include "migrate/vm_spec.h"
#include "wire/control.h"
#include "wire/handshake.h"

namespace gangmig::cli {

const char kMigrateHelp[] =
    "usage: gangmig migrate --to HOST:PORT --key-file FILE --vm SPEC [--vm SPEC ...]\n"
    "                       [--report FILE.json] [--timeout SEC] [--max-buffer MIB]\n"
    "                       [--verify-copies MIB] [--compress auto|zstd|off]\n"
    "                       [--zstd-level N] [--delta auto|on|off] [--dest-window PAGES]\n"
    "                       [--threads N] [--page-ram MIB] [--spill-dir DIR]\n"
    "                       [--cache DIR [--cache-size MIB]] [--quiet]\n"
    "       gangmig migrate --libvirt --dest-uri URI [--source-uri URI]\n"
    "                       [--socket-dir DIR] [--libvirt-flag FLAG ...]\n"
    "                       --to HOST:PORT --key-file FILE --vm name=DOMAIN ...\n"
    "       gangmig migrate --direct --vm SPEC,dest=tcp:H:P[,dest-qmp=PATH] ...\n"
    "                       [--report FILE.json]\n\n"
    "Migrates every VM at once. Each source QEMU is told (over its QMP socket) to migrate\n"
    "into a local gangmig endpoint; gangmig sends each distinct page content once over one\n"
    "encrypted, authenticated connection to `gangmig receive`, which rebuilds each VM's\n"
    "stream byte for byte and feeds it to that VM's destination QEMU.\n\n"
    "  --to HOST:PORT     the receiver (gangmig receive --listen ...)\n"
    "  --key-file FILE    shared key, same file as the receiver's (gangmig keygen FILE;\n"
    "                     mode 0600, random: other or guessable keys are refused)\n"
    "  --vm SPEC          name=N,qmp=PATH\n"
    "                       name      the VM's name: the receiver host maps it to the\n"
    "                                 destination QEMU (receive --dest-dir/--dest-map)\n"
    "                       qmp       the source VM's QMP unix socket (a monitor gangmig\n"
    "                                 may use alone: QMP serves one client at a time)\n"
    "  --libvirt          the VMs are libvirt domains (name= is the domain; no qmp=):\n"
    "                     libvirt keeps its monitor; gangmig runs `virsh -c SOURCE-URI\n"
    "                     migrate --live --p2p [FLAG...] DOMAIN DEST-URI --migrateuri\n"
    "                     unix://DIR/DOMAIN.sock` for each, takes each stream on that\n"
    "                     socket, and libvirt rolls back what fails. The destination\n"
    "                     host's receiver must map DOMAIN to the same path there:\n"
    "                     receive --dest-dir DIR --dest-wait 60 (libvirt creates the\n"
    "                     destination QEMU only once the migration starts). DIR must be\n"
    "                     reachable by the QEMU user (root:libvirt-qemu 0770 on Debian)\n"
    "  --source-uri URI   this host's libvirt (default qemu:///system)\n"
    "  --dest-uri URI     the destination's libvirt, as the source libvirt reaches it\n"
    "                     (--p2p), e.g. qemu+ssh://dest/system\n"
    "  --socket-dir DIR   where the streams' sockets go (default /run/gangmig)\n"
    "  --libvirt-flag F   one more `virsh migrate` flag, e.g. --persistent,\n"
    "                     --undefinesource, --auto-converge, --parallel (multifd: its\n"
    "                     extra connections are relayed verbatim), --copy-storage-all\n"
    "                     (the disk copy goes through DIR/DOMAIN.disks.sock, relayed\n"
    "                     verbatim as the stream DOMAIN.disks); --tunnelled is refused\n"
    "                     (no socket to take)\n"
    "  --direct           baseline: plain QEMU migration of each VM straight to its\n"
    "                     destination, same report; no receiver needed. SPEC then adds\n"
    "                     dest=tcp:HOST:PORT (-incoming) and optionally dest-qmp=PATH\n"
    "  --report FILE      write per-VM and total figures as JSON\n"
    "  --timeout SEC      give up and roll back after SEC seconds (default 900)\n"
    "  --max-buffer MIB   link bytes queued before sources are throttled (default 1)\n"
    "  --verify-copies MIB  pages sent that get a copy (default 1024). A page is\n"
    "                     referenced only after its content is proven equal to one\n"
    "                     already sent: byte by byte against such a copy, or by SHA-256\n"
    "                     for pages without one (~2.5 us per page)\n"
    "  --page-ram MIB     of those copies, the newest this much stay in RAM (default\n"
    "                     128; 0 = all); an older one is replaced by its SHA-256\n"
    "                     (~1 us per page, 32 bytes), so memory stays bounded whatever\n"
    "                     the gang's size; only pages with a copy can be delta bases\n"
    "  --spill-dir DIR    instead, move older copies to a private, nameless spill file\n"
    "                     in DIR (up to --verify-copies of space, gone when gangmig\n"
    "                     exits): more delta bases, but slower (page-cache writes)\n"
    "  --cache DIR        keep every distinct page sent in this host's page cache (the\n"
    "                     format and rules of `receive --cache`): when the VMs later\n"
    "                     migrate back to a receiver here with the same --cache DIR,\n"
    "                     the pages it still holds need not cross again\n"
    "  --cache-size MIB   its bound (default 8192)\n"
    "  --compress MODE    zstd compression of what crosses the link (default auto):\n"
    "                       auto  every record body, except one whose sampled bytes\n"
    "                             look random (encrypted or compressed memory) and\n"
    "                             while an idle link is faster than zstd: it never\n"
    "                             makes a run slower\n"
    "                       zstd  always (refuses a receiver without zstd)\n"
    "                       off   never\n"
    "  --zstd-level N     zstd level, -7..19 (default 1; negative = faster, larger)\n"
    "  --delta MODE       a page that changed since its last version crossed goes as\n"
    "                     the changed bytes only (auto/on/off, default auto; `on`\n"
    "                     refuses a receiver without it)\n"
    "  --dest-window PAGES  pages (zero pages included) read from a source but not yet\n"
    "                     given to its destination, at most (default 1024; 0 = no\n"
    "                     limit). Keeps the rate QEMU measures equal to the rate the\n"
    "                     destination takes pages in, so QEMU's downtime estimate holds\n"
    "  --threads N        threads compressing record bodies beside the data thread\n"
    "                     (default: one per CPU, at most 8; 0 = on the data thread).\n"
    "                     Records keep their order on the link whatever N is\n"
    "  --quiet            no progress lines\n\n"
    "QEMU migration parameters (max-bandwidth, downtime-limit, capabilities) are left as\n"
    "they are: set them on the source as for any migration. QEMU's default max-bandwidth\n"
    "(128 MiB/s on 7.2) throttles each VM; raise it to let the link be the limit.\n\n"
    "Fixed waits (src/migrate/timeouts.h): reaching the receiver and completing the\n"
    "handshake 30 s in all (retried while it starts or is busy), the receiver confirming every\n"
    "destination 60 s, each QMP connect or rollback command 5 s, QEMU leaving the\n"
    "migration after migrate_cancel 10 s. Liveness: a PING after 5 s of sending nothing;\n"
    "a receiver that sends nothing for 30 s (link stalled, receiver stopped) fails the\n"
    "gang, which is rolled back; a source whose QMP and stream both stay silent for 60 s\n"
    "fails alone (QMP alone may be silent longer: QEMU answers nothing while it writes\n"
    "its last round).\n\n"
    "On failure every source VM that was not migrated keeps running (the migration is\n"
    "cancelled, and a source QEMU that had already stopped is resumed with `cont`); the\n"
    "exit status is 1 and the message names each VM and what failed.\n";

const char kProxyHelp[] =
    "usage: gangmig proxy --peer NAME=HOST:PORT [--peer ...] --key-file FILE\n"
    "                     [--discover URI|none] [--vm NAME ...] [--socket-dir DIR]\n"
    "                     [--socket-group GROUP] [--linger SEC] [--report-dir DIR]\n"
    "                     [session options of migrate: --compress, --delta, --threads,\n"
    "                      --verify-copies, --page-ram, --spill-dir, --max-buffer,\n"
    "                      --dest-window, --timeout]\n\n"
    "A daemon on a source host for orchestrators that drive libvirt themselves (Nova,\n"
    "KubeVirt, scripts): it never touches QMP or starts a migration. For each peer it\n"
    "keeps DIR/NAME/ with a listening socket DOMAIN.sock per domain running here (and\n"
    "DOMAIN.disks.sock for its disk copy, relayed verbatim). A migration started as\n\n"
    "  virsh migrate --live --p2p DOMAIN qemu+ssh://PEERHOST/system \\\n"
    "        --migrateuri unix:///run/gangmig/NAME/DOMAIN.sock\n\n"
    "makes the source QEMU connect to that socket here, and libvirt's destination QEMU\n"
    "listen on the same path on the peer, where `gangmig receive --dest-dir\n"
    "/run/gangmig/NAME --dest-wait 60` connects each stream. Every stream that connects\n"
    "while a session to that peer is open, or within --linger seconds after its last VM\n"
    "finished, joins that session (one connection, one dedup index); later ones open a\n"
    "new session. A stream that fails is closed, and libvirt keeps its domain running on\n"
    "this host. Each VM's outcome is logged; --report-dir keeps one JSON report per\n"
    "session.\n\n"
    "  --peer NAME=HOST:PORT  a destination host (NAME: the directory's name, letters,\n"
    "                     digits and ._-) and its receiver's address\n"
    "  --key-file FILE    shared key, the same file as the receivers' (gangmig keygen)\n"
    "  --discover URI     serve every running domain of this libvirt, re-read every\n"
    "                     --discover-every SEC (default 2); default qemu:///system\n"
    "                     unless --vm names are given; `none`: only the --vm names\n"
    "  --vm NAME          a name always served (a socket exists before its domain does)\n"
    "  --socket-dir DIR   default /run/gangmig (the same path on every host)\n"
    "  --socket-group G   group of the directories (0770) and sockets (0660), so QEMU\n"
    "                     running as libvirt's QEMU user can connect (default\n"
    "                     libvirt-qemu when that group exists, else root only)\n"
    "  --linger SEC       how long a session waits for more streams after its last VM\n"
    "                     finished (default 3)\n"
    "  --report-dir DIR   write each session's report there as PEER-TIME-N.json\n\n"
    "Runs until SIGTERM/SIGINT; sessions under way are then failed (their sources keep\n"
    "their VMs). Exit status 2 on bad usage, 1 if the sockets cannot be made.\n";

const char kReceiveHelp[] =
    "usage: gangmig receive --listen HOST:PORT --key-file FILE\n"
    "                       (--dest-dir DIR | --dest-map FILE | both) [--once] [--quiet]\n"
    "                       [--max-buffer MIB] [--max-session-buffer MIB]\n"
    "                       [--max-store MIB] [--disable zstd,delta] [--threads N]\n"
    "                       [--cache DIR [--cache-size MIB]]\n"
    "                       [--seed-from FILE ...] [--page-ram MIB] [--spill-dir DIR]\n"
    "                       [--dest-wait SEC]\n\n"
    "Destination end. Waits for an authenticated sender, connects to each VM's\n"
    "destination QEMU (started with -incoming ADDR, and preferably -S so nothing runs\n"
    "before the operator resumes it), rebuilds each stream byte for byte and relays the\n"
    "return path. A peer without the key is refused before it can send anything.\n"
    "A sender only names its VMs: this host alone decides where each one goes, so a\n"
    "sender can never make the receiver write into any other socket.\n"
    "Connections are served side by side: each gets 10 s for the whole handshake, at\n"
    "most 64 unauthenticated ones are held (8 per address; more are closed at once and\n"
    "logged, one line per second), and several senders can run sessions at once.\n\n"
    "  --listen HOST:PORT  address to listen on (port 0 picks a free port)\n"
    "  --key-file FILE     shared key (gangmig keygen FILE); mode 0600, random\n"
    "  --dest-dir DIR      VM NAME goes to the unix socket DIR/NAME.sock (its destination\n"
    "                      QEMU runs with -incoming unix:DIR/NAME.sock); DIR/NAME.qmp, if\n"
    "                      it exists, is the QMP socket the receiver uses to confirm the\n"
    "                      load and time the resume. Symlinks are refused\n"
    "  --dest-map FILE     lines `NAME ADDRESS [QMP-SOCKET]` ('#' comments), ADDRESS\n"
    "                      unix:PATH or tcp:HOST:PORT; read again for every session;\n"
    "                      its entries come before --dest-dir. A VM with no\n"
    "                      destination fails (the others go on)\n"
    "  --dest-wait SEC     a destination that is not there when its VM opens is tried\n"
    "                      again for up to SEC s while the session goes on (its frames\n"
    "                      wait within --max-buffer): for destinations that the\n"
    "                      migration itself creates, as libvirt does (default 0: it must\n"
    "                      be there)\n"
    "  --cache DIR         keep every distinct page received, on disk in DIR (mode 0700,\n"
    "                      created if missing), named by its SHA-256, across sessions\n"
    "                      and restarts (`gangmig cache stat DIR` shows it)\n"
    "  --cache-size MIB    the cache's bound (default 8192); the oldest pages go first,\n"
    "                      pages in use get a second chance\n"
    "  --seed-from FILE    (repeatable, with --cache) before each session, read FILE --\n"
    "                      the RAM file of a VM already running here (QEMU's\n"
    "                      memory-backend-file, libvirt's memory_backing_dir) -- into the\n"
    "                      cache, so pages it holds need not cross. Needs read access to\n"
    "                      the file (root or the QEMU user); costs one read and one\n"
    "                      SHA-256 per non-zero page (~0.5 s per GiB filled, here)\n"
    "  --once              exit after one session (exit status 1 if it failed)\n"
    "  --max-buffer MIB    stream bytes queued towards one destination QEMU before the\n"
    "                      link is paused (default 8). Counted before frames expand (a\n"
    "                      4-byte page reference is 4 KiB here), so whatever a sender\n"
    "                      sends, a session holds at most this per destination ...\n"
    "  --max-session-buffer MIB  ... and this for all its destinations (default 256)\n"
    "  --max-store MIB     distinct page contents one session may keep (a reference may\n"
    "                      name any of them); beyond it the session fails with this\n"
    "                      reason (default: half this host's RAM)\n"
    "  --page-ram MIB      of those, the newest this much per session stay in RAM\n"
    "                      (default 1024; 0 = all); older pages go to a private,\n"
    "                      nameless spill file, read back when a reference names them,\n"
    "                      so memory stays bounded whatever the gang's size\n"
    "  --spill-dir DIR     where that file goes (default: the --cache DIR, else\n"
    "                      /var/tmp; it needs up to --max-store of space, and is gone\n"
    "                      when the session ends)\n"
    "  --disable LIST      refuse these encodings from senders (zstd, delta; comma-\n"
    "                      separated), e.g. to spare this host's CPU. A sender that\n"
    "                      requires one (--compress zstd) is then refused by name\n"
    "  --threads N         threads that decompress what the sender compressed, 0..64\n"
    "                      (0: on the data thread; default one per CPU, at most 8).\n"
    "                      Bodies keep their order; at most 2N+2 wait in memory\n"
    "  --quiet             no log lines\n\n"
    "Fixed waits (src/migrate/timeouts.h): the whole handshake 10 s, connecting to a\n"
    "destination QEMU 10 s, its QMP 5 s, its QMP reporting the load after the stream\n"
    "ended 10 s. Liveness: a PING to the sender after 5 s of sending nothing; a session\n"
    "whose sender sent nothing for 30 s fails (link stalled, sender stopped); a\n"
    "destination QEMU that takes none of the bytes waiting for it for 30 s fails, alone:\n"
    "the other VMs go on.\n";

const char kKeygenHelp[] =
    "usage: gangmig keygen [--force] FILE\n\n"
    "Writes 32 random bytes, hex encoded, to FILE (mode 0600). Copy the file to both\n"
    "hosts (keeping it private: migrate and receive refuse a key file that group or\n"
    "others can read); it never crosses the wire. An existing FILE is kept unless\n"
    "--force is given; FILE must not be a symbolic link.\n";

namespace {

struct Flags {
  std::vector<std::pair<std::string, std::string>> values;
  std::vector<std::string> switches;
  std::string error;
};

// Parses --flag VALUE pairs and bare --switches (names listed in `switch_names`).
Flags ParseFlags(const Args& args, const std::vector<std::string>& switch_names) {
  Flags f;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool is_switch = false;
    for (const auto& s : switch_names) is_switch = is_switch || a == s;
    if (is_switch) {
      f.switches.push_back(a);
    } else if (a.rfind("--", 0) == 0 && i + 1 < args.size()) {
      f.values.push_back({a, args[++i]});
    } else {
      f.error = "unexpected argument '" + a + "'";
      return f;
    }
  }
  return f;
}

bool Has(const Flags& f, const std::string& name) {
  for (const auto& s : f.switches)
    if (s == name) return true;
  return false;
}

// The key is the only secret between the hosts: a file others can read is refused (as
// ssh refuses such a private key), and so is a key that looks guessable.
Result<Bytes> ReadKeyFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::Error("key file " + path + ": cannot read it (" + strerror(errno) +
                         "); create one with `gangmig keygen " + path + "`");
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    close(fd);
    return Status::Error("key file " + path + ": not a regular file");
  }
  if (info.st_mode & 077) {
    close(fd);
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", unsigned(info.st_mode & 07777));
    return Status::Error("key file " + path + ": readable by others (mode " + mode +
                         "); run `chmod 600 " + path + "`");
  }
  std::string key;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 && key.size() < (1u << 20))
    key.append(buf, size_t(n));
  close(fd);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '))
    key.pop_back();
  Bytes b(key.begin(), key.end());
  Status st = wire::ValidateKey(b);
  if (!st.ok()) return st.WithContext(path);
  return b;
}

// Prints the error and the command's usage lines (the first paragraph of its help).
int Usage(const char* help, const std::string& error) {
  std::string h(help);
  size_t end = h.find("\n\n");
  fprintf(stderr, "gangmig: %s\n%s\n(--help explains every option)\n", error.c_str(),
          h.substr(0, end).c_str());
  return 2;
}

bool WriteReport(const std::string& path, const migrate::Report& report) {
  if (path.empty()) return true;
  std::ofstream out(path);
  out << report.ToJson().dump(2) << "\n";
  if (!out) {
    fprintf(stderr, "gangmig: cannot write the report to %s\n", path.c_str());
    return false;
  }
  return true;
}

// The flags migrate and proxy share (a gang session's settings). True if `k` is one of
// them; an error names the flag and what is allowed.
Result<bool> ApplySessionFlag(const std::string& k, const std::string& v,
                              migrate::SenderOptions* opt, EncodingChoice* enc) {
  if (k == "--timeout" || k == "--max-buffer" || k == "--verify-copies") {
    auto n = k == "--timeout"      ? ParseNumber(k, v, 1, 7 * 24 * 3600)
             : k == "--max-buffer" ? ParseNumber(k, v, 1, 1024)
                                   : ParseNumber(k, v, 0, 1 << 24);
    if (!n.ok()) return n.status();
    if (k == "--timeout") opt->timeout_s = int(*n);
    if (k == "--max-buffer") opt->max_buffer = size_t(*n) << 20;
    if (k == "--verify-copies") opt->verify_copies = uint64_t(*n) << 20;
  } else if (k == "--page-ram") {
    auto n = ParseNumber(k, v, 0, 1 << 24);
    if (!n.ok()) return n.status();
    opt->page_ram = *n ? uint64_t(*n) << 20 : UINT64_MAX;
  } else if (k == "--spill-dir") {
    opt->spill_dir = v;
  } else if (k == "--compress" || k == "--zstd-level" || k == "--delta") {
    GANGMIG_RETURN_IF_ERROR(ApplyEncodingFlag(k, v, enc));
  } else if (k == "--dest-window") {
    auto n = ParseNumber(k, v, 0, 1 << 24);
    if (!n.ok()) return n.status();
    opt->dest_window_pages = uint64_t(*n);
  } else if (k == "--threads") {
    auto n = ParseNumber(k, v, 0, OrderedWork::kMaxThreads);
    if (!n.ok()) return n.status();
    opt->threads = int(*n);
  } else {
    return false;
  }
  return true;
}

}  // namespace

// A spill directory must exist and be writable before anything starts: finding out
// mid-migration would fail the gang.
Status CheckSpillDir(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::Error("--spill-dir " + dir + " is not a directory");
  if (access(dir.c_str(), W_OK | X_OK) != 0)
    return Status::Error("--spill-dir " + dir + ": " + strerror(errno));
  return Status::Ok();
}

int RunMigrate(const Args& args) {
  Flags f = ParseFlags(args, {"--direct", "--quiet", "--libvirt"});
  migrate::LibvirtTarget libvirt;
  libvirt.source_uri = "qemu:///system";
  if (!f.error.empty()) return Usage(kMigrateHelp, f.error);
  migrate::SenderOptions opt;
  EncodingChoice enc{.compression = opt.compression, .features = opt.features};
  std::string key_file, report_path;
  for (const auto& [k, v] : f.values) {
    if (k == "--to")
      opt.receiver = v;
    else if (k == "--key-file")
      key_file = v;
    else if (k == "--report")
      report_path = v;
    else if (auto used = ApplySessionFlag(k, v, &opt, &enc); !used.ok())
      return Usage(kMigrateHelp, used.status().message());
    else if (*used)
      continue;
    else if (k == "--source-uri") {
      libvirt.source_uri = v;
    } else if (k == "--dest-uri") {
      libvirt.dest_uri = v;
    } else if (k == "--socket-dir") {
      opt.socket_dir = v;
    } else if (k == "--libvirt-flag") {
      // What gangmig cannot serve is refused before anything starts.
      if (v == "--tunnelled")
        return Usage(kMigrateHelp, "--libvirt-flag --tunnelled: a tunnelled migration goes "
                                   "through libvirt's own connection, with no socket for "
                                   "gangmig to take");
      if (v.rfind("--", 0) != 0 || v == "--migrateuri" || v == "--live" || v == "--p2p" ||
          v == "--disks-uri" || v == "--disks-port")
        return Usage(kMigrateHelp, "--libvirt-flag " + v + ": not a flag gangmig may pass on "
                                   "(gangmig sets --live --p2p, --migrateuri and --disks-uri "
                                   "itself)");
      if (v == "--copy-storage-all" || v == "--copy-storage-inc") libvirt.copy_storage = true;
      libvirt.extra_args.push_back(v);
    } else if (k == "--cache") {
      opt.cache_dir = v;
    } else if (k == "--cache-size") {
      auto n = ParseNumber(k, v, 64, 64 << 20);  // MiB
      if (!n.ok()) return Usage(kMigrateHelp, n.status().message());
      opt.cache_size = uint64_t(*n) << 20;
    } else if (k == "--vm") {
      auto spec = migrate::ParseVmSpec(v);
      if (!spec.ok()) return Usage(kMigrateHelp, spec.status().message());
      opt.vms.push_back(*spec);
    } else {
      return Usage(kMigrateHelp, "unknown option '" + k + "'");
    }
  }
  bool direct = Has(f, "--direct");
  opt.progress = !Has(f, "--quiet");
  opt.compression = enc.compression;
  opt.features = enc.features;
  opt.required_features = enc.required_features;
  bool use_libvirt = Has(f, "--libvirt");
  if (use_libvirt) {
    if (direct) return Usage(kMigrateHelp, "--libvirt and --direct do not go together");
    if (libvirt.dest_uri.empty())
      return Usage(kMigrateHelp, "--libvirt needs --dest-uri URI (the destination's libvirt)");
    opt.libvirt = libvirt;
    for (const auto& vm : opt.vms)
      if (libvirt.copy_storage && !wire::ValidVmName(vm.name + ".disks"))
        return Usage(kMigrateHelp, "--vm name=" + vm.name + ": with --copy-storage-*, its disk "
                                   "copy travels as '" + vm.name + ".disks', longer than a "
                                   "name may be (64)");
  }
  Status valid = migrate::ValidateVmSpecs(opt.vms, direct, use_libvirt);
  if (!valid.ok()) return Usage(kMigrateHelp, valid.message());
  if (opt.timeout_s <= 0) return Usage(kMigrateHelp, "--timeout must be a positive number");
  if (!direct && opt.page_ram != UINT64_MAX && !opt.spill_dir.empty()) {
    Status spill = CheckSpillDir(opt.spill_dir);
    if (!spill.ok()) return Usage(kMigrateHelp, spill.message());
  }
  migrate::Report report;
  Status st;
  if (direct) {
    st = migrate::RunDirectMigration(opt, &report);
  } else {
    if (opt.receiver.empty()) return Usage(kMigrateHelp, "--to HOST:PORT is required");
    if (key_file.empty()) return Usage(kMigrateHelp, "--key-file FILE is required");
    auto key = ReadKeyFile(key_file);
    if (!key.ok()) return Usage(kMigrateHelp, key.status().message());
    opt.key = *key;
    st = migrate::RunGangMigration(opt, &report);
  }
  fputs(report.Table().c_str(), stdout);
  bool wrote = WriteReport(report_path, report);
  if (!st.ok()) {
    fprintf(stderr, "gangmig migrate: FAILED: %s\n", st.message().c_str());
    return 1;
  }
  return wrote ? 0 : 1;
}

int RunProxy(const Args& args) {
  Flags f = ParseFlags(args, {});
  if (!f.error.empty()) return Usage(kProxyHelp, f.error);
  migrate::ProxyOptions opt;
  EncodingChoice enc{.compression = opt.session.compression, .features = opt.session.features};
  std::string key_file, discover;
  bool discover_given = false, group_given = false;
  for (const auto& [k, v] : f.values) {
    if (auto used = ApplySessionFlag(k, v, &opt.session, &enc); !used.ok()) {
      return Usage(kProxyHelp, used.status().message());
    } else if (*used) {
      continue;
    } else if (k == "--peer") {
      size_t eq = v.find('=');
      migrate::ProxyPeer p;
      if (eq != std::string::npos) p = {v.substr(0, eq), v.substr(eq + 1)};
      if (eq == std::string::npos || !wire::ValidVmName(p.name) || !net::ParseAddress(p.receiver).ok())
        return Usage(kProxyHelp, "--peer '" + v + "': expected NAME=HOST:PORT (NAME: letters, "
                                 "digits, ._-)");
      for (const auto& q : opt.peers)
        if (q.name == p.name) return Usage(kProxyHelp, "--peer " + p.name + " is given twice");
      opt.peers.push_back(p);
    } else if (k == "--key-file") {
      key_file = v;
    } else if (k == "--discover") {
      discover = v, discover_given = true;
    } else if (k == "--discover-every") {
      auto n = ParseNumber(k, v, 1, 3600);
      if (!n.ok()) return Usage(kProxyHelp, n.status().message());
      opt.discover_ms = int(*n) * 1000;
    } else if (k == "--vm") {
      if (!wire::ValidVmName(v))
        return Usage(kProxyHelp, "--vm '" + v + "': a name is letters, digits and ._- (at most 64)");
      opt.names.push_back(v);
    } else if (k == "--socket-dir") {
      opt.socket_dir = v;
    } else if (k == "--socket-group") {
      opt.socket_group = v, group_given = true;
    } else if (k == "--linger") {
      auto n = ParseNumber(k, v, 0, 3600);
      if (!n.ok()) return Usage(kProxyHelp, n.status().message());
      opt.session.linger_ms = int(*n) * 1000;
    } else if (k == "--report-dir") {
      opt.report_dir = v;
    } else {
      return Usage(kProxyHelp, "unknown option '" + k + "'");
    }
  }
  if (opt.peers.empty()) return Usage(kProxyHelp, "at least one --peer NAME=HOST:PORT is required");
  if (key_file.empty()) return Usage(kProxyHelp, "--key-file FILE is required");
  if (!discover_given) discover = opt.names.empty() ? "qemu:///system" : "none";
  opt.discover_uri = discover == "none" ? "" : discover;
  if (opt.discover_uri.empty() && opt.names.empty())
    return Usage(kProxyHelp, "--discover none needs --vm NAME (nothing to serve otherwise)");
  if (!group_given && getgrnam("libvirt-qemu")) opt.socket_group = "libvirt-qemu";
  opt.session.compression = enc.compression;
  opt.session.features = enc.features;
  opt.session.required_features = enc.required_features;
  if (opt.session.page_ram != UINT64_MAX && !opt.session.spill_dir.empty()) {
    Status spill = CheckSpillDir(opt.session.spill_dir);
    if (!spill.ok()) return Usage(kProxyHelp, spill.message());
  }
  if (!opt.report_dir.empty() && access(opt.report_dir.c_str(), W_OK | X_OK) != 0)
    return Usage(kProxyHelp, "--report-dir " + opt.report_dir + ": " + strerror(errno));
  auto key = ReadKeyFile(key_file);
  if (!key.ok()) return Usage(kProxyHelp, key.status().message());
  opt.session.key = *key;
  Status st = migrate::RunProxy(opt);
  if (!st.ok()) {
    fprintf(stderr, "gangmig proxy: FAILED: %s\n", st.message().c_str());
    return 1;
  }
  return 0;
}

int RunReceive(const Args& args) {
  Flags f = ParseFlags(args, {"--once", "--quiet"});
  if (!f.error.empty()) return Usage(kReceiveHelp, f.error);
  migrate::ReceiverOptions opt;
  std::string key_file;
  for (const auto& [k, v] : f.values) {
    if (k == "--listen")
      opt.listen = v;
    else if (k == "--key-file")
      key_file = v;
    else if (k == "--dest-dir")
      opt.dest_dir = v;
    else if (k == "--dest-map")
      opt.dest_map = v;
    else if (k == "--cache")
      opt.cache_dir = v;
    else if (k == "--seed-from")
      opt.seed_from.push_back(v);
    else if (k == "--cache-size") {
      auto n = ParseNumber(k, v, 64, 64 << 20);  // MiB
      if (!n.ok()) return Usage(kReceiveHelp, n.status().message());
      opt.cache_size = uint64_t(*n) << 20;
    }
    else if (k == "--max-buffer") {
      auto n = ParseNumber(k, v, 1, 1024);
      if (!n.ok()) return Usage(kReceiveHelp, n.status().message());
      opt.max_buffer = size_t(*n) << 20;
    } else if (k == "--max-session-buffer") {
      auto n = ParseNumber(k, v, 1, 65536);
      if (!n.ok()) return Usage(kReceiveHelp, n.status().message());
      opt.max_session_buffer = size_t(*n) << 20;
    } else if (k == "--max-store") {
      auto n = ParseNumber(k, v, 1, 16 << 20);  // MiB, up to 16 TiB (2^32 pages)
      if (!n.ok()) return Usage(kReceiveHelp, n.status().message());
      opt.max_store = uint64_t(*n) << 20;
    } else if (k == "--dest-wait") {
      auto n = ParseNumber(k, v, 0, 3600);
      if (!n.ok()) return Usage(kReceiveHelp, n.status().message());
      opt.dest_wait_ms = int(*n) * 1000;
    } else if (k == "--page-ram") {
      auto n = ParseNumber(k, v, 0, 1 << 24);
      if (!n.ok()) return Usage(kReceiveHelp, n.status().message());
      opt.page_ram = *n ? uint64_t(*n) << 20 : UINT64_MAX;
    } else if (k == "--spill-dir") {
      opt.spill_dir = v;
    } else if (k == "--threads") {
      auto n = ParseNumber(k, v, 0, OrderedWork::kMaxThreads);
      if (!n.ok()) return Usage(kReceiveHelp, n.status().message());
      opt.threads = int(*n);
    } else if (k == "--disable") {
      std::stringstream names(v);
      for (std::string name; std::getline(names, name, ',');) {
        if (name == "zstd")
          opt.features &= uint16_t(~wire::kFeatureZstd);
        else if (name == "delta")
          opt.features &= uint16_t(~wire::kFeatureDelta);
        else
          return Usage(kReceiveHelp, "--disable: '" + name + "' is not one of zstd, delta");
      }
    } else {
      return Usage(kReceiveHelp, "unknown option '" + k + "'");
    }
  }
  if (opt.listen.empty()) return Usage(kReceiveHelp, "--listen HOST:PORT is required");
  if (key_file.empty()) return Usage(kReceiveHelp, "--key-file FILE is required");
  auto key = ReadKeyFile(key_file);
  if (!key.ok()) return Usage(kReceiveHelp, key.status().message());
  auto dests = migrate::LoadDestMap(opt);
  if (!dests.ok()) return Usage(kReceiveHelp, dests.status().message());
  if (!opt.seed_from.empty() && opt.cache_dir.empty())
    return Usage(kReceiveHelp, "--seed-from needs --cache DIR (seeded pages go into the cache)");
  for (const std::string& path : opt.seed_from) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Usage(kReceiveHelp, "--seed-from " + path + ": " + strerror(errno));
    close(fd);
  }
  if (opt.page_ram != UINT64_MAX && migrate::SpillDir(opt) != opt.cache_dir) {
    Status spill = CheckSpillDir(migrate::SpillDir(opt));  // the cache dir is made and checked later
    if (!spill.ok()) return Usage(kReceiveHelp, spill.message());
  }
  opt.key = *key;
  opt.once = Has(f, "--once");
  opt.verbose = !Has(f, "--quiet");
  Status st = migrate::RunReceiver(opt);
  if (opt.verbose)
    fprintf(stderr, "gangmig receive: peak memory (VmHWM) %llu KiB\n",
            (unsigned long long)migrate::PeakRssKib());
  if (!st.ok()) {
    fprintf(stderr, "gangmig receive: %s\n", st.message().c_str());
    return 1;
  }
  return 0;
}

int RunKeygen(const Args& args) {
  bool force = false;
  std::string path;
  for (const std::string& a : args) {
    if (a == "--force") {
      force = true;
    } else if (path.empty() && a.rfind("--", 0) != 0) {
      path = a;
    } else {
      return Usage(kKeygenHelp, "unexpected argument '" + a + "'");
    }
  }
  if (path.empty()) return Usage(kKeygenHelp, "expected exactly one FILE");
  uint8_t raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    fprintf(stderr, "gangmig keygen: no randomness available\n");
    return 1;
  }
  std::string hex = HexString(ByteView(raw, sizeof(raw))) + "\n";
  OPENSSL_cleanse(raw, sizeof(raw));
  // O_NOFOLLOW: a symlink planted at FILE is never followed; O_EXCL unless --force.
  int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
  int fd = open(path.c_str(), flags, 0600);
  if (fd < 0 && errno == EEXIST) {
    fprintf(stderr, "gangmig keygen: %s exists; keeping it (use --force to replace it)\n",
            path.c_str());
    return 1;
  }
  bool ok = fd >= 0 && fchmod(fd, 0600) == 0 &&
            write(fd, hex.data(), hex.size()) == ssize_t(hex.size()) && fsync(fd) == 0;
  if (!ok) {
    fprintf(stderr, "gangmig keygen: cannot write %s: %s\n", path.c_str(),
            errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    if (fd >= 0) close(fd);
    return 1;
  }
  close(fd);
  return 0;
}

}  // namespace gangmig::cli
