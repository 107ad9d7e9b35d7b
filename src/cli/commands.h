// The sub-commands of the gangmig binary and their help texts.
#pragma once

#include <string>
#include <vector>

namespace gangmig::cli {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;
  const char* help;
  int (*run)(const Args& args);  // returns the process exit code
};

extern const char kMigrateHelp[];
extern const char kReceiveHelp[];
extern const char kDemoHelp[];
extern const char kKeygenHelp[];
extern const char kBenchHelp[];
extern const char kCacheHelp[];
extern const char kProxyHelp[];

int RunMigrate(const Args& args);
int RunReceive(const Args& args);
int RunDemo(const Args& args);
int RunKeygen(const Args& args);
int RunBench(const Args& args);
int RunCache(const Args& args);
int RunProxy(const Args& args);

}  // namespace gangmig::cli
