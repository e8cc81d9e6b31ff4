// Package runstore is the on-disk experiment store: one directory per study,
// one directory per step, every output written atomically.
//
// # Layout
//
//	experiments/<name>/
//	  config.yaml                                  resolved config of the last command
//	  teachers/<size>/seed-<n>/                    step "teacher"
//	    manifest.json                              provenance + status (see Manifest)
//	    model.safetensors                          weights; metadata holds the model config
//	    metrics.jsonl                              one JSON record per epoch
//	    summary.json                               TeacherSummary
//	    logits_{train,val,test}.npy                float32 N×C
//	    labels_{train,val,test}.npy                int64 N
//	    index_{train,val}.npy                      int64 N: position in the official training set
//	  calibration/<method>/<size>/seed-<n>/        step "calibration"
//	    manifest.json
//	    params.json                                the fitted calibrator (calibrate.Save format)
//	    metrics.json                               CalibrationResult (the `calibrate --json` object)
//	    reliability_{val,test}_{before,after}.csv  lo,hi,count,accuracy,confidence
//	  students/<setting>/<arm>/<size>/seed-<n>/    step "student" (arm raw | calibrated)
//	  students/scratch-ep<E>/seed-<n>/             step "student" (arm scratch)
//	    manifest.json, model.safetensors, metrics.jsonl, summary.json (StudentSummary),
//	    logits_{val,test}.npy, labels_{val,test}.npy
//	  report/                                      step "report": README.md, tables, figures
//
// <setting> names one KD combination, e.g. "tau4-kdw0.9-ep20" (SettingName).
//
// # Steps
//
// A step writes into <dir>.partial/ while it runs (resume checkpoints live
// there too) and, when it finishes, writes manifest.json with status "done"
// and renames <dir>.partial to <dir>. Readers therefore see a step's outputs
// all at once or not at all. An flock on <dir>.lock keeps two processes —
// on one machine or on several sharing a filesystem — from running the same
// step; the kernel drops the lock when its process dies, so a crash leaves no
// stale lock. Everything else (reading finished steps, writing other steps)
// needs no lock, so many processes can each run one step concurrently.
package runstore
