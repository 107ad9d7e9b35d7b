// Both ends of the handshake on arbitrary messages: errors, never a crash, never an
// accepted proof from a peer that cannot know the key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "wire/handshake.h"

using namespace gangmig;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes key(AsBytes(std::string_view("fuzzing key 0123456789abcdef0123456789abcdef")).begin(),
                  AsBytes(std::string_view("fuzzing key 0123456789abcdef0123456789abcdef")).end());
  ByteView in(data, size);
  wire::ServerHandshake server(key, wire::kFeaturesKnown);
  auto reply = server.OnClientHello(in.first(std::min(size, wire::kClientHelloSize)));
  if (reply.ok() && size >= wire::kClientHelloSize) {
    ByteView proof = in.subspan(wire::kClientHelloSize);
    if (server.OnClientProof(proof.first(std::min(proof.size(), wire::kClientProofSize))).ok())
      std::abort();  // a proof guessed without the key
  }
  wire::ClientHandshake client(key, wire::kFeaturesKnown);
  if (client.OnServerHello(in).ok()) std::abort();  // a ServerHello forged without the key
  return 0;
}
