// Package runstore is the on-disk experiment store: one directory per study,
// one directory per step, every output written atomically.
//
// # Layout
//
//	experiments/<name>/
//	  kdcal-store.json                             marks a kdcal store (MarkerFile; see Open)
//	  config.yaml                                  resolved config of the latest command
//	  configs/<hash>.yaml                          every resolved config the store was written with (RecordConfig)
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
//	  logs/<key>.<time>-<pid>.log                  one log per attempt by `kdcal run`; <key>.log links to the latest
//
// <setting> names one KD combination, e.g. "tau4-kdw0.9-ep20" (SettingName).
//
// # Steps
//
// A step writes into <dir>.partial/ while it runs (resume checkpoints live
// there too) and, when it finishes, writes manifest.json with status "done"
// and the size and SHA-256 of every other file, and renames <dir>.partial to
// <dir>. Readers therefore see a step's outputs all at once or not at all,
// and State can tell a step whose outputs were later deleted or changed
// (damaged) from a done one. Nothing is replaced that kdcal did not write:
// Open refuses directories that are not stores, Begin step directories
// without a manifest of the step's kind, OpenOutput outputs outside the
// store that are not earlier outputs of the same kind. An flock on <dir>.lock keeps two processes —
// on one machine or on several sharing a filesystem — from running the same
// step; the kernel drops the lock when its process dies, so a crash leaves no
// stale lock. Everything else (reading finished steps, writing other steps)
// needs no lock, so many processes can each run one step concurrently.
package runstore
