// Every fixed wait of `migrate` and `receive`, in one place. `migrate --help` and
// `receive --help` quote them; change both together. All in milliseconds.
#pragma once

namespace gangmig::migrate::timeouts {

// Sender: keep retrying to reach and shake hands with a receiver that is still starting,
// or busy refusing strangers, for this long in all (each attempt bounded by what is left;
// longer than kHandshakeMs, so slots held by idle strangers free up within it).
inline constexpr int kReceiverConnectMs = 30000;
// Receiver: a connection must complete the whole handshake within this.
inline constexpr int kHandshakeMs = 10000;
// Sender: the receiver must confirm every destination (VM_OPEN -> ready) within this.
inline constexpr int kDestinationsReadyMs = 60000;
// Either end: connecting to a QMP socket, and a QMP command during rollback
// (migrate_cancel, cont).
inline constexpr int kQmpMs = 5000;
// Sender: a source whose QMP has not answered, and whose stream has given nothing, for
// this long is given up on (longer than kIdleMs: a stalled link is reported as such).
// QMP alone may stay silent longer: QEMU answers nothing while it writes its last round.
inline constexpr int kSourceMuteMs = 60000;
// Sender, rollback: how long QEMU may take to leave the active migration states.
inline constexpr int kCancelSettleMs = 10000;
// Receiver: connecting to a destination QEMU's -incoming socket.
inline constexpr int kDestinationConnectMs = 10000;
// Either end: send a PING after sending nothing for this long ...
inline constexpr int kKeepaliveMs = 5000;
// ... and end the session after receiving nothing for this long (link stalled, peer
// stopped or frozen). The receiver does not count time it spent not reading the link.
inline constexpr int kIdleMs = 30000;
// Receiver: a destination QEMU that takes none of the bytes waiting for it for this long
// fails (that VM only).
inline constexpr int kDestinationStallMs = 30000;
// Receiver: after a destination closed the stream, how long its QMP may take to report
// the load's outcome before the receiver reports what it has.
inline constexpr int kLoadSettleMs = 10000;

}  // namespace gangmig::migrate::timeouts
