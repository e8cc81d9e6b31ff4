// Package train is kdcal's training engine: one entry point, Run, trains a
// model (teacher or student) from a config.Train recipe with plain
// cross-entropy (optionally label-smoothed) or a knowledge-distillation
// loss, evaluates it on separate forward-only graphs, checkpoints after
// every epoch and resumes bit-identically.
//
// # Loss
//
// For a batch B of valid examples (the last batch of an epoch is padded to
// the graph's fixed batch size; padded rows get weight 0, which gives the
// exact gradient of the smaller batch):
//
//	L = w_ce · (1/|B|) Σ_i −Σ_k q_ik log softmax(s_i)_k
//	  + w_kd · τ² · (1/|B|) Σ_i Σ_k p_ik (log p_ik − log softmax(s_i/τ)_k)
//
// with q_i = (1−ε)·onehot(y_i) + ε/C (label smoothing ε), p_i the teacher's
// softened probabilities (KD.Targets, looked up by the example's position
// in the train split) and s_i the logits. Without KD, w_ce = 1 and the
// second term is absent. The graph computes the KD term in cross-entropy
// form −Σ_k p_ik log softmax(s_i/τ)_k, which has the same gradient (Hinton
// et al. 2015, "Distilling the knowledge in a neural network"); the
// constant Σ_k p_ik log p_ik is added in Go so that reported losses are true
// KL divergences. log softmax is computed with the max shift,
// z − m − log Σ exp(z − m), because gorgonia's own SoftMax/LogSoftMax are
// unstable (shared/docs/gorgonia-notes.md §10).
//
// # Determinism
//
// Two PCG streams are derived from the seed alone: one initialises the
// weights, the other shuffles batches. Two jobs with the same seed and
// architecture therefore start from the same weights and see the same batch
// order whatever their loss — distillation's scratch arm relies on that.
// On one machine and build, the same job gives bit-identical weights and
// logits, and a run resumed from an epoch checkpoint equals an
// uninterrupted one.
package train
