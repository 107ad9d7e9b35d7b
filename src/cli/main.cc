// gangmig: the command-line front end. Sub-commands are a table {name, summary, help,
// function}; each parses its own flags and calls into the migrate layer.
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "base/alloc.h"
#include "cli/commands.h"

namespace gangmig::cli {
namespace {

const Command kCommands[] = {
    {"migrate", "gang-migrate running VMs to a receiver (or --direct with plain QEMU)",
     kMigrateHelp, RunMigrate},
    {"receive", "run the destination end that rebuilds and feeds each VM's stream", kReceiveHelp,
     RunReceive},
    {"proxy", "source-host daemon: streams of migrations libvirt runs join gang sessions",
     kProxyHelp, RunProxy},
    {"demo", "on this machine: start VMs, gang-migrate, check RAM, compare with direct", kDemoHelp,
     RunDemo},
    {"bench", "run the benchmark scenarios (gang vs plain QEMU) and write results/", kBenchHelp,
     RunBench},
    {"keygen", "write a new random shared key file", kKeygenHelp, RunKeygen},
    {"cache", "show or fill a receiver's page cache (receive --cache DIR)", kCacheHelp, RunCache},
};

void Usage(FILE* out) {
  fprintf(out,
          "gangmig - live-migrate a gang of QEMU VMs at once, sending every distinct memory\n"
          "page over the network only once.\n\n"
          "usage: gangmig <command> [options]   (gangmig <command> --help for details)\n\n"
          "commands:\n");
  for (const Command& c : kCommands) fprintf(out, "  %-9s %s\n", c.name, c.summary);
  fprintf(out,
          "\nQuick start on one machine: gangmig demo\n"
          "Two hosts: on the destination `gangmig keygen key; gangmig receive --listen "
          "0.0.0.0:7070 --key-file key --dest-dir /run/gangmig`\n"
          "(destination QEMUs started with -incoming unix:/run/gangmig/NAME.sock), copy key\n"
          "to the source, there `gangmig migrate --to DEST:7070 --key-file key --vm "
          "name=web1,qmp=/run/web1.qmp ...`\n");
}

}  // namespace
}  // namespace gangmig::cli

int main(int argc, char** argv) {
  using namespace gangmig::cli;
  gangmig::TuneAllocator();
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    Usage(stdout);
    return argc < 2 ? 2 : 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (strcmp(argv[1], c.name) != 0) continue;
    for (const std::string& a : args) {
      if (a == "--help" || a == "-h") {
        fputs(c.help, stdout);
        return 0;
      }
    }
    return c.run(args);
  }
  fprintf(stderr, "gangmig: unknown command '%s'\n\n", argv[1]);
  Usage(stderr);
  return 2;
}
