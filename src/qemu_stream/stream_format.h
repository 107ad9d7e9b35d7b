// Constants of QEMU's main migration stream, as far as gangmig's parser needs them.
// Constants only: no code. The format itself is written down in
// shared/qemu-stream/README.md (sections 2 and 3); the layouts below are a summary.
//
// File header:     be32 kFileMagic, be32 kFileVersion, [CONFIGURATION]
// CONFIGURATION:   u8 0x07, be32 len, machine name, then subsections
//                  { u8 0x05, counted name "configuration/...", be32 version, body }*
// START / FULL:    u8 type, be32 section_id, counted idstr, be32 instance, be32 version,
//                  body, footer
// PART / END:      u8 type, be32 section_id, body, footer
// footer:          u8 0x7e, be32 section_id
// COMMAND:         u8 0x08, be16 cmd, be16 len, len bytes
// RAM record:      be64 (offset | flags), [counted block idstr], payload by flag
// All integers are big-endian; a counted string is u8 len + len bytes, no NUL.
#pragma once

#include <cstdint>
#include <string_view>

namespace gangmig::qemu_stream {

// ---- File header -------------------------------------------------------------------
inline constexpr uint32_t kFileMagic = 0x5145564d;  // "QEVM"
inline constexpr uint32_t kFileVersion = 3;
inline constexpr size_t kFileHeaderSize = 8;

// ---- Top-level record types (u8) ----------------------------------------------------
inline constexpr uint8_t kRecEof = 0x00;
inline constexpr uint8_t kRecSectionStart = 0x01;
inline constexpr uint8_t kRecSectionPart = 0x02;
inline constexpr uint8_t kRecSectionEnd = 0x03;
inline constexpr uint8_t kRecSectionFull = 0x04;
inline constexpr uint8_t kRecSubsection = 0x05;
inline constexpr uint8_t kRecVmDescription = 0x06;
inline constexpr uint8_t kRecConfiguration = 0x07;
inline constexpr uint8_t kRecCommand = 0x08;
inline constexpr uint8_t kRecSectionFooter = 0x7e;

inline constexpr size_t kSectionFooterSize = 5;  // 0x7e + be32 section_id

// ---- CONFIGURATION subsections -------------------------------------------------------
inline constexpr std::string_view kConfigSubsectionPrefix = "configuration/";
inline constexpr std::string_view kConfigTargetPageBits = "configuration/target-page-bits";
inline constexpr std::string_view kConfigCapabilities = "configuration/capabilities";
inline constexpr std::string_view kConfigUuid = "configuration/uuid";
inline constexpr size_t kConfigUuidSize = 16;
// The one validated capability that changes the RAM START layout we parse: each block
// in the block list then carries an extra be64 mr_addr.
inline constexpr std::string_view kCapXIgnoreShared = "x-ignore-shared";

// ---- COMMAND numbers (be16) -----------------------------------------------------------
inline constexpr uint16_t kCmdOpenReturnPath = 1;  // len 0
inline constexpr uint16_t kCmdPing = 2;            // len 4: be32 value
inline constexpr uint16_t kCmdPostcopyAdvise = 3;  // len 16 or 0
inline constexpr uint16_t kCmdPostcopyListen = 4;
inline constexpr uint16_t kCmdPostcopyRun = 5;
inline constexpr uint16_t kCmdPostcopyRamDiscard = 6;
inline constexpr uint16_t kCmdPackaged = 7;  // len 4; then be32 N more bytes
inline constexpr uint16_t kCmdEnableColo = 8;
inline constexpr uint16_t kCmdPostcopyResume = 9;
inline constexpr uint16_t kCmdRecvBitmap = 10;
inline constexpr uint16_t kCmdSwitchoverStart = 11;  // len 0; 10.0+ machine types
inline constexpr size_t kPingPayloadSize = 4;

// ---- RAM section -----------------------------------------------------------------------
inline constexpr std::string_view kRamIdstr = "ram";
inline constexpr uint32_t kRamSectionVersion = 4;

// Flags in the low bits of the be64 record word (QEMU keeps them below 0x400).
inline constexpr uint64_t kRamFlagFull = 0x001;      // obsolete, never sent
inline constexpr uint64_t kRamFlagZero = 0x002;      // payload: u8 fill
inline constexpr uint64_t kRamFlagMemSize = 0x004;   // START only: the block list
inline constexpr uint64_t kRamFlagPage = 0x008;      // payload: one target page
inline constexpr uint64_t kRamFlagEos = 0x010;       // end of this section's RAM data
inline constexpr uint64_t kRamFlagContinue = 0x020;  // same block as previous record
inline constexpr uint64_t kRamFlagXbzrle = 0x040;
inline constexpr uint64_t kRamFlagHook = 0x080;          // RDMA only
inline constexpr uint64_t kRamFlagCompressPage = 0x100;  // <= 9.0
inline constexpr uint64_t kRamFlagMultifdFlush = 0x200;  // 8.1+, no payload
inline constexpr uint64_t kRamFlagsKnown = 0x3ff;
// Records with any of these flags (and without CONTINUE) carry a counted block idstr.
inline constexpr uint64_t kRamFlagsWithBlock =
    kRamFlagZero | kRamFlagPage | kRamFlagXbzrle | kRamFlagCompressPage;

}  // namespace gangmig::qemu_stream
