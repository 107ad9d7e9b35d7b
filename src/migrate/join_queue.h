// JoinQueue: how streams that connected by themselves reach a running gang session
// (gangmig proxy). The proxy's accepting thread pushes each new connection with the VM
// name its socket stands for; the session's sender takes them in its event loop (it
// polls wake_fd()). Once the session has closed the queue (nothing left to do and the
// linger window over) pushes are refused and the proxy starts a new session instead, so
// no stream is ever left in a queue nobody reads.
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "net/socket.h"

namespace gangmig::migrate {

struct JoinedStream {
  std::string name;  // the VM's name (its socket's NAME.sock)
  net::Fd fd;        // the source QEMU's connection
};

class JoinQueue {
 public:
  JoinQueue();
  ~JoinQueue();
  JoinQueue(const JoinQueue&) = delete;
  JoinQueue& operator=(const JoinQueue&) = delete;

  // Hands `fd` to the session. False (and `fd` left as it was) once the queue is closed.
  bool Push(const std::string& name, net::Fd& fd);
  // Everything pushed since the last call; clears wake_fd().
  std::vector<JoinedStream> Take();
  // Closes the queue if nothing waits in it; true if it is closed now.
  bool CloseIfEmpty();
  // Closes the queue and returns what was still waiting (the caller fails those).
  std::vector<JoinedStream> Close();
  // Readable while streams wait.
  int wake_fd() const { return wake_[0]; }

 private:
  std::mutex mu_;
  std::deque<JoinedStream> waiting_;
  bool closed_ = false;
  int wake_[2] = {-1, -1};
};

}  // namespace gangmig::migrate
