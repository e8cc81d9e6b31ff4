package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExternalTeacherHash pins what an external teacher's hash depends on:
// its files' bytes (replacing one changes the teacher, its calibrations and
// students, not the scratch students) and the split, not the teachers'
// training recipe, which it never uses.
func TestExternalTeacherHash(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mod time.Time) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mod, mod)
	}
	t0 := time.Now().Add(-time.Hour)
	write("small/seed-0/train_logits.npy", "train", t0)
	write("small/seed-0/test_logits.npy", "test", t0)
	set := map[string]string{"teacher.source": "external", "teacher.external_dir": dir, "teacher.sizes": "[small]", "seeds": "[0]"}
	base := Build(load(t, set))

	recipe := map[string]string{"teacher.train.lr": "0.5"}
	split := map[string]string{"data.split_seed": "7"}
	for k, v := range set {
		recipe[k], split[k] = v, v
	}
	if got := stagesOf(changed(base, Build(load(t, recipe)))); got != "" {
		t.Errorf("teacher.train.lr changed %q of an external study, want nothing", got)
	}
	if got := stagesOf(changed(base, Build(load(t, split)))); !strings.Contains(got, "teachers") {
		t.Errorf("data.split_seed changed %q, want the teachers among them", got)
	}
	if trained := Build(load(t, map[string]string{"teacher.sizes": "[small]", "seeds": "[0]", "teacher.family": "mlp"})); func() bool {
		a, _ := trained.Get("teachers/small/seed-0")
		b, _ := base.Get("teachers/small/seed-0")
		return a.Hash == b.Hash
	}() {
		t.Error("an external teacher has the hash of a trained one")
	}

	// Same size, same modification time, other bytes: the digest cache must
	// not hide it (the size differs); then same bytes rewritten: no change.
	write("small/seed-0/test_logits.npy", "test2", t0)
	if got := stagesOf(changed(base, Build(load(t, set)))); got != "teachers,calibration,raw,calibrated,report" {
		t.Errorf("replacing test_logits.npy changed %q, want the teacher, its calibration, KD students and the report", got)
	}
	write("small/seed-0/test_logits.npy", "test", t0.Add(time.Minute))
	if got := stagesOf(changed(base, Build(load(t, set)))); got != "" {
		t.Errorf("rewriting the same bytes changed %q, want nothing", got)
	}
	// params.json enters the hash too (it is the size axis).
	write("small/params.json", `{"params": 10}`, t0)
	if got := stagesOf(changed(base, Build(load(t, set)))); !strings.Contains(got, "teachers") {
		t.Errorf("adding params.json changed %q, want the teachers", got)
	}
}
