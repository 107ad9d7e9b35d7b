// Constants of the gangmig wire protocol, version 6: the handshake messages, the record
// layer and the frame types. Constants only; the format itself is described in
// docs/WIRE.md, and the code that reads and writes it lives in handshake.h, record.h and
// frame.h. Changing any value here changes the protocol: bump kProtocolVersion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gangmig::wire {

// ---- Handshake -----------------------------------------------------------------------
inline constexpr uint8_t kMagic[4] = {'G', 'G', 'M', 'G'};
// Version 2 replaced version 1's record MAC (truncated HMAC-SHA256) by ChaCha20-Poly1305;
// version 3 takes the sequence number out of the MAC's associated data (it stays in the
// nonce), so a record's MAC input is its bytes as they lie in memory; version 4 turns the
// hello's flags into a feature set that both ends negotiate (and the proofs cover), and
// adds the ZFRAMES and DELTA frames; version 5 encrypts every record body (AES-256-GCM)
// under keys from an ephemeral X25519 exchange authenticated by the shared key (forward
// secrecy); version 6 lets VM_OPEN name a VM only (the receiver host maps names to
// destinations) and adds PING (keepalive).
inline constexpr uint16_t kProtocolVersion = 6;

// Features: the ClientHello offers a set, the ServerHello answers the subset both ends
// use for the session. Bits not defined here are never offered and never agreed.
inline constexpr uint16_t kFeatureZstd = 0x0001;   // ZFRAMES frames (sender -> receiver)
inline constexpr uint16_t kFeatureDelta = 0x0002;  // DELTA frames (sender -> receiver)
// The receiver's page cache (receive --cache): SUMMARY, CREF, FILL, NEED, CACHE_ACK.
inline constexpr uint16_t kFeatureCache = 0x0008;
// (0x0004 was reserved for record encryption; since version 5 every record is
// encrypted, so it is never used.)
inline constexpr uint16_t kFeaturesKnown = kFeatureZstd | kFeatureDelta | kFeatureCache;

inline constexpr size_t kMinKeySize = 16;  // bytes of the shared key file, at least
inline constexpr size_t kNonceSize = 32;
inline constexpr size_t kEphemeralKeySize = 32;  // an X25519 public or private key
inline constexpr size_t kMacSize = 32;  // HMAC-SHA256 output: proofs and session keys
inline constexpr size_t kSessionKeySize = kMacSize;

// magic[4] | be16 version | be16 flags
inline constexpr size_t kHelloHeaderSize = 8;
// header | nonce_c[32] | e_c[32] (the client's ephemeral X25519 public key)
inline constexpr size_t kClientHelloSize = kHelloHeaderSize + kNonceSize + kEphemeralKeySize;  // 72
// header | nonce_s[32] | e_s[32] | proof_s[32]
inline constexpr size_t kServerHelloSize =
    kHelloHeaderSize + kNonceSize + kEphemeralKeySize + kMacSize;  // 104
// proof_c[32]
inline constexpr size_t kClientProofSize = kMacSize;  // 32

// HMAC labels, used as the first bytes of the MAC input (no terminating NUL). Version 5
// changed the derivation (everything hangs off the X25519 secret), hence "v5".
inline constexpr std::string_view kSecretLabel = "gangmig v5 secret";
inline constexpr std::string_view kServerProofLabel = "gangmig v5 server";
inline constexpr std::string_view kClientProofLabel = "gangmig v5 client";
inline constexpr std::string_view kClientToServerLabel = "gangmig v5 c2s";
inline constexpr std::string_view kServerToClientLabel = "gangmig v5 s2c";

// ---- Record layer --------------------------------------------------------------------
// be32 body_len | ciphertext[body_len] | tag[16]
inline constexpr size_t kRecordHeaderSize = 4;
// ciphertext, tag = AES-256-GCM(key = the direction's session key, IV = 4 zero bytes |
// be64 sequence, plaintext = body, AAD = be32 body_len)
inline constexpr size_t kRecordTagSize = 16;  // the whole GCM tag
inline constexpr size_t kRecordOverhead = kRecordHeaderSize + kRecordTagSize;
inline constexpr size_t kMaxRecordBody = (1u << 20) + 64;  // 1 MiB + 64
// GCM IV: 4 zero bytes | be64 sequence
inline constexpr size_t kRecordNonceSize = 12;

// ---- Frames --------------------------------------------------------------------------
enum class FrameType : uint8_t {
  kVmOpen = 0x01,       // sender:   be16 vm | be16 len | JSON
  kData = 0x02,         // sender:   be16 vm | u8 channel | be32 len | bytes
  kPage = 0x03,         // sender:   be16 vm | u8 channel | page[4096]
  kRef = 0x04,          // sender:   be16 vm | u8 channel | be32 page_id
  kChannelOpen = 0x05,  // sender:   be16 vm | u8 channel
  kChannelEof = 0x06,   // sender:   be16 vm | u8 channel
  kZFrames = 0x07,      // sender:   be32 len | be32 raw_len | zstd frame (kFeatureZstd)
  kDelta = 0x08,        // sender:   be16 vm | u8 channel | be32 base_id | be16 len | delta
  kCref = 0x09,         // sender:   be16 vm | u8 channel | key[32] (kFeatureCache)
  kFill = 0x0a,         // sender:   be32 cref | page[4096] (kFeatureCache)
  kRpData = 0x10,       // receiver: be16 vm | u8 channel | be32 len | bytes
  kRpEof = 0x11,        // receiver: be16 vm | u8 channel
  kVmEvent = 0x12,      // receiver: be16 vm | be16 len | JSON
  kSummary = 0x13,      // receiver: be32 len | u8 k | u8 log2_bits | be32 offset | bits
  kNeed = 0x14,         // receiver: be32 cref
  kCacheAck = 0x15,     // receiver: be32 crefs (every CREF before this one is resolved)
  kAbort = 0x20,        // either:   be16 len | UTF-8 reason
  kGoodbye = 0x21,      // sender:   (no fields)
  kPing = 0x22,         // either:   (no fields) keepalive
};

inline constexpr size_t kMaxVms = 1024;     // vm ids 0..1023
inline constexpr size_t kMaxChannels = 64;  // channel ids 0..63; 0 is the main channel
inline constexpr size_t kPageSize = 4096;
inline constexpr size_t kMaxDataLen = 1u << 20;    // DATA and RP_DATA payload, 1..1 MiB
inline constexpr size_t kMaxJsonLen = 65535;       // VM_OPEN, VM_EVENT; also ABORT reasons
inline constexpr size_t kMaxDeltaLen = kPageSize;  // DELTA payload, 1..4096 (encode/delta.h)
// ZFRAMES payload: be32 raw_len, then a zstd frame that decompresses to exactly raw_len
// (1..kMaxRecordBody) bytes of whole frames, none of them ZFRAMES.
inline constexpr size_t kZFramesRawLenSize = 4;
inline constexpr size_t kMinZFramesLen = kZFramesRawLenSize + 1;

// Fixed part of each frame, type byte included.
inline constexpr size_t kVmOpenHeaderSize = 5;           // type | vm | len
inline constexpr size_t kDataHeaderSize = 8;             // type | vm | channel | len
inline constexpr size_t kPageFrameSize = 4 + kPageSize;  // type | vm | channel | page
inline constexpr size_t kRefFrameSize = 8;               // type | vm | channel | page_id
inline constexpr size_t kDeltaHeaderSize = 10;           // type | vm | channel | id | len
inline constexpr size_t kZFramesHeaderSize = 5;          // type | len
inline constexpr size_t kChannelFrameSize = 4;           // type | vm | channel
inline constexpr size_t kVmEventHeaderSize = 5;          // type | vm | len
inline constexpr size_t kAbortHeaderSize = 3;            // type | len
inline constexpr size_t kGoodbyeFrameSize = 1;           // type
inline constexpr size_t kPingFrameSize = 1;              // type
inline constexpr size_t kKeySize = 32;                   // SHA-256 of a page
inline constexpr size_t kCrefFrameSize = 4 + kKeySize;   // type | vm | channel | key
inline constexpr size_t kFillFrameSize = 5 + kPageSize;  // type | cref | page
inline constexpr size_t kSummaryHeaderSize = 5;          // type | len
inline constexpr size_t kSummaryFieldsSize = 6;          // k | log2_bits | be32 offset
inline constexpr size_t kMaxFrameSize = kDataHeaderSize + kMaxDataLen;

static_assert(kMaxFrameSize <= kMaxRecordBody, "the largest frame must fit in one record");
static_assert(kMaxRecordBody < (size_t{1} << 32), "body_len is a be32");

}  // namespace gangmig::wire
