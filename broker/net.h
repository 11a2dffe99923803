/*
 * net.h — the broker's network process and its channel to the core (docs/security.md,
 * "Privilege separation"; docs/protocol.md, "Inside the broker").
 *
 * The core (every other file of the broker) runs `sharehub-broker --net-side CHANNEL KEYFILE
 * LEVEL ENDPOINT...` as a child. That process alone reads the network: it holds the CURVE
 * secret key and the listening sockets, never a store key or a signing key. The two talk over
 * a ZeroMQ PAIR socket on CHANNEL, an ipc:// path in a fresh 0700 directory of the store,
 * which the core removes as soon as the child has connected.
 *
 * Net -> core, one message each:
 *   [rid, key(32), verdict, signature, command, fields...]   a message from an agent; rid is
 *       its ZeroMQ routing id (never empty), key the CURVE key its connection authenticated,
 *       the frames after the verdict are those the agent sent (only the first when it sent
 *       more than any command has). verdict: "M" — nothing to say; for a PUBLISH, "X" or "V"
 *       then code (u16 BE), has_id (u8), id (16), detail: "X" the envelope was refused before
 *       decoding or did not decode (no frames follow the verdict), "V" it decoded and its
 *       evidence was refused.
 *   ["", "READY"]            the endpoints are bound and the sandbox is on
 *   ["", "FAILED", text]     it could not start (text names the endpoint or the step)
 *   ["", "COUNTS", 6 x u64 BE]  since the last: keys refused, handshakes refused, handshakes
 *       interrupted, handshakes failed, connections closed, sends dropped (full peer queue)
 * Core -> net:
 *   [rid, signature, command, body]   send this to the agent rid
 *   ["", "KEYS", records]    the enrolled keys, each: key(32), u8 n, org code (n bytes),
 *       u8 m, m Ed25519 signing keys (32 each); replaces the last set
 *
 * Owns: the network process's life (net.c). Never: lets the core read a byte from the network
 * that has not passed through this process.
 */
#ifndef SHAREHUB_BROKER_NET_H
#define SHAREHUB_BROKER_NET_H

#define BK_NET_FLAG     "--net-side"
#define BK_NET_COUNTS   6
#define BK_VERDICT_HEAD (1 + 2 + 1 + 16) /* verdict, code, has_id, id */

/* The network process: argv after BK_NET_FLAG (channel, key file, log level, endpoints).
 * Returns its exit status: 0 after SIGTERM, 1 when it could not start or lost the core. */
int bk_net_main(int argc, char **argv);

#endif
