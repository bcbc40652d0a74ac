// Package engine runs private inferences end to end: a Server holds a BERT
// classifier (weights, approximation settings, learned pruning thresholds)
// and serves sessions on a net.Listener; a Client holds the model's public
// part and a private text, and gets the label without either side learning
// the other's secret (docs/design.md: "Parties, secrets and what leaks",
// "One inference, step by step").
//
// engine is the only package that knows the order of a whole inference
// (session.go): mpcbridge/layers computes each layer's stages on additive
// shares (products by weights and shared products in polynomial
// encodings, the nonlinearities in CKKS slots), mpcbridge/prunestep runs
// the pruning step and the opening of the result on shares, and
// mpcbridge/wire carries every message.
//
// # A session
//
// A session is one connection (client C, server S) and one set of C's keys;
// it carries any number of inferences, one after the other (Session; the
// one-shot Client.Infer is a session of one):
//
//  1. Handshake (wire): protocol version, the preset's name, the SHA-256
//     fingerprint of the public model (Fingerprint) and the public bounds
//     every session uses must be equal on both ends, or both get the
//     reason. A server at its session limit aborts instead (ErrBusy).
//  2. Plan, per inference. C sends MsgSession: the padded length n and
//     what it asks for (pruning, degree reduction, the label alone or the
//     logits, a hide-length group). S answers MsgAccept: what it applies,
//     the output bound of its products (one figure of its weights), the
//     bound of the softmax's exponentials, the level of each polynomial's
//     input, the layers that prune and whether the last layer computes
//     every row (a model that is a prefix of a deeper one) or, as by
//     default, the CLS row alone. That is all C learns of S's
//     approximations: their intervals and degrees stay secret. Both derive
//     the parameters and plans from these public values. None of them
//     depends on n (the products' blocks are planned for the model's
//     largest n), so the keys fit every n; the options are fixed by the
//     session's first request and S refuses a later request that changes
//     them, C a later answer that changes anything but n.
//  3. Keys, in the first inference only. C generates fresh keys and
//     sends its CKKS public and relinearization keys and its public keys
//     of the two products' rings (10 MB at Elementwise14; no Galois key:
//     nothing rotates). S checks each against the expected binary
//     structure.
//  4. Input. C tokenizes and pads the text and embeds it (the embedding
//     tables are public): its share of X_0 is the embedding itself, S's is
//     zero. Nothing is sent.
//  5. Encoder (encoder, the same loop on both sides): per layer the
//     attention stage (whose padding is C's secret until a pruning step:
//     C's key mask enters a product with the exponentials), the pruning
//     step where the layer prunes (prunestep.Server.PruneShares: the kept
//     and high-degree counts are the only thing either side learns; the
//     kept rows go on, CLS and the high-degree rows first), the
//     feed-forward stage with the rows' degrees.
//  6. Head and output: the pooler and classifier on the CLS row, then by
//     default the label alone (prunestep.Server.RevealLabelShares: a
//     garbled argmax of the logits' shares whose result only C learns);
//     with ClientConfig.OpenLogits, allowed by S
//     (ServerConfig.AllowOpenLogits), the logits rounded to 2^-16. S then
//     sends its timings (MsgReport, public).
//
// After the report C sends the next inference's MsgSession, or MsgClose to
// end the session (S's ServeConn then returns nil). S bounds each
// inference by ServerConfig.SessionTimeout and the wait for the next
// request by IdleTimeout. The statistical masks' budgets are counted per
// session, by S's parties, which hold C's keys from the first inference to
// the close. Both sides keep a ledger of them (inferenceMasks) and refuse,
// before any message, an inference whose worst case could pass what is
// left (ErrSessionSpent): C then opens a new session, with new keys
// (docs/design.md, "Sessions").
//
// A failure on either side aborts the connection with a reason the peer
// reads in its error; a peer that disconnects gives an error naming the step
// on the other side, and the Server goes on serving other clients.
//
// # What leaks
//
// To S: the preset, the padded length n, and per pruning layer the kept and
// high-degree counts. The first kept count reveals the text's real length
// almost exactly: padding receives no attention, so the first pruning step
// drops all of it (a 12-token text padded to 16 keeps 12 or fewer rows). A
// client that sets ClientConfig.HideLength g reveals each kept count only
// rounded up to a multiple of g (or the rows in, if fewer): every step also
// keeps the best-scoring rows below θ up to that count, chosen inside a
// garbled circuit (mpcbridge/README.md section 3), so the first count
// places the length only within its group of g; the padding rows kept are
// processed as tokens from then on, in the plaintext reference too
// (ReferenceScheduleHiding), which is why such a client pads with [SEP]
// (HidingPadding).
// To C: the same counts, the model's public shape and the public trace of
// MsgAccept, and the label alone by default; with OpenLogits (allowed by
// S) the logits rounded to 2^-16. The thresholds θ and β enter only the
// garbled comparisons as S's inputs.
//
// # Rules
//
// Rules turns a model's thresholds into the per-layer rules and
// ReferenceSchedule makes the same decisions in the plaintext approximate
// forward (models.ServerModel.Forward), which is what the private
// inference computes: the tests compare the two.
package engine
