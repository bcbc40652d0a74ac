// Package engine runs private inferences end to end: a Server holds a BERT
// classifier (weights, approximation settings, learned pruning thresholds)
// and serves sessions on a net.Listener; a Client holds the model's public
// part and a private text, and gets the label without either side learning
// the other's secret (docs/design.md: "Parties, secrets and what leaks", "One inference, step by step").
//
// engine is the only package that knows the order of a whole inference:
// ckks evaluates the layers homomorphically, mpcbridge/prunestep runs the
// two-party steps between them (refresh, encrypted pruning and degree
// selection, opening the logits), mpcbridge/wire carries every message.
//
// # A session
//
// One session is one inference on one connection (client C, server S):
//
//  1. Handshake (wire): protocol version, the preset's name, the SHA-256
//     fingerprint of the public model (Fingerprint) and the bridge's fixed-
//     point format must be equal on both ends, or both get the reason.
//  2. C sends MsgSession: the padded length n and whether it wants pruning
//     and degree reduction. S answers MsgAccept: the reductions it applies
//     (none if the model has no thresholds), the block size of the packing
//     and the Galois elements of its rotation plan, which C checks against
//     the public plan (ckks.GaloisElements for the model's shape): C only
//     gives keys the public plan needs. A server at its session limit
//     aborts instead (ErrBusy), before any key is made.
//  3. C generates a fresh key pair and sends the public key, the
//     relinearization key and one Galois key per message; S checks each
//     key's size against the preset and each Galois element against the
//     plan.
//  4. C tokenizes and pads the text, embeds it (the embedding table is
//     public), encrypts X_0 in the column-block packing (ckks.Layout) and the
//     attention masks of the padding, and sends both (MsgInput, MsgMasks). S
//     checks every ciphertext's ring, level, scale and representation
//     (ckks.CheckCiphertexts) before touching it.
//  5. S evaluates the layers (ckks attention block, bridge, feed-forward
//     block) with a prunestep.Bridge; C answers the bridge's requests
//     (prunestep.Client.ServeBridgeEvents): refreshes wherever levels run
//     out, the pruning step after each pruning layer's attention block (the
//     kept and high-degree counts are the only thing either side learns),
//     and progress notes. The pruning step re-packs the kept rows into the
//     smallest block they fit (ckks.Layout.Compact for the model's head
//     dimension and heads, several heads per ciphertext once few rows are
//     left, computed by both sides from the public count); when that
//     block is smaller, C sends right away, one MsgGaloisKey each, the keys
//     of the new block's rotation plan that S does not hold (keyPlan), and
//     S keeps only the new plan's keys. The layer's feed-forward block and
//     every later layer run on the smaller block: fewer ciphertexts per
//     matrix. A session whose request sets the keep-block flag
//     (ClientConfig.KeepBlock) keeps the first block throughout and sends
//     no keys after a step: the trade for a slow link.
//  6. S evaluates the pooler and the classifier. By default S opens only
//     the label (prunestep.Server.RevealLabel: the logits' ciphertext goes
//     to shares and a garbled comparison of the two logits' shares gives a
//     bit only C learns; two-label models). If C asks for the logits
//     (ClientConfig.OpenLogits) and S allows it (ServerConfig.AllowOpenLogits),
//     S opens the logits' slots to C only (prunestep.Server.Reveal): the
//     other slots of that ciphertext hold S's intermediate sums and are
//     never decrypted unmasked, but the logits' low bits carry the last
//     ciphertext's noise (mpcbridge/README.md section 7), hence the opt-in
//     on both sides. S then sends its timings (MsgReport, public).
//
// A failure on either side aborts the connection with a reason the peer
// reads in its error; a peer that disconnects gives an error naming the step
// on the other side, and the Server goes on serving other clients.
//
// # What leaks
//
// To S: the preset, the padded length n, and per pruning layer the kept and
// high-degree counts (the re-packing block and the extra keys follow from
// them). The first kept count reveals the text's real length almost
// exactly: padding receives no attention, so the first pruning step drops
// all of it (a 12-token text padded to 16 keeps 12 or fewer rows). A client
// that sets ClientConfig.HideLength g reveals each kept count only rounded
// up to a multiple of g (or the rows in, if fewer): every step also keeps
// the best-scoring rows below θ up to that count, chosen inside a garbled
// circuit (mpcbridge/README.md section 3), so the first count places the
// length only within its group of g; the padding rows kept are processed
// as tokens from then on, in the plaintext reference too
// (ReferenceScheduleHiding), which is why such a client pads with [SEP]
// (HidingPadding).
// To C: the same counts and the model's public shape, and the label alone
// by default; with OpenLogits (allowed by S) the logits rounded to 2^-14,
// with their last trace of the computation's noise (mpcbridge/README.md
// section 7). The
// thresholds θ and β enter only the garbled comparisons as S's inputs.
//
// # Rules
//
// Rules turns a model's thresholds into the bridge's per-layer rules and
// ReferenceSchedule makes the same decisions in the plaintext approximate
// forward (models.ServerModel.Forward), which is what the encrypted
// inference computes: the tests compare the two.
package engine
