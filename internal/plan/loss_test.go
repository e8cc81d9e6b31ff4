package plan

import (
	"slices"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
)

// TestQuickHashesPinned pins step hashes of configs/quick.yaml as main
// computed them before kd.loss existed (printed by plan.Build on commit
// bfa8757): adding the loss grid must not re-run an existing study.
func TestQuickHashesPinned(t *testing.T) {
	c, err := config.Load(config.Source{File: "../../configs/quick.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	p := Build(c)
	for _, pin := range []struct{ key, hash string }{
		{"teachers/large/seed-2", "1d04a3aa544d6349"},
		{"calibration/temp/small/seed-1", "76dfc3e218e601e1"},
		{"students/tau4-kdw0.9-ep10/calibrated/large/seed-0", "4639df7aeae96c68"},
		{"students/tau1-kdw0.9-ep10/raw/tiny/seed-2", "eb3aaa1e0cf52cc1"},
	} {
		s, ok := p.Get(pin.key)
		if !ok || s.Hash != pin.hash {
			t.Errorf("%s: hash %q (present %v), pinned %q", pin.key, s.Hash, ok, pin.hash)
		}
	}
}

// TestLossGrid: kd.loss is a grid axis; with one loss the setting names
// are today's, with several they carry the loss; the default loss keeps
// its hash, another loss and its own settings change only its students.
func TestLossGrid(t *testing.T) {
	base := Build(load(t, map[string]string{"teacher.sizes": "[small]", "seeds": "[0]"}))
	kdOnly := Build(load(t, map[string]string{"teacher.sizes": "[small]", "seeds": "[0]", "kd.loss": "[kd]",
		"kd.dkd_alpha": "2"})) // dkd's settings do not concern kd
	if got := changed(base, kdOnly); len(got) != 0 {
		t.Errorf("kd.loss [kd] and kd.dkd_alpha changed %v", got)
	}
	grid := Build(load(t, map[string]string{"teacher.sizes": "[small]", "seeds": "[0]", "kd.loss": "[kd, dkd, mse]"}))
	want := map[string]bool{}
	for _, l := range []string{"kd", "dkd"} {
		want["students/"+l+"-tau4-kdw0.9-ep20/raw/small/seed-0"] = true
	}
	want["students/mse-kdw0.9-ep20/raw/small/seed-0"] = true // mse has no τ
	hashes := map[string]string{}
	for _, s := range grid.Steps {
		if s.Arm == config.ArmRaw {
			if !want[s.Key] {
				t.Errorf("unexpected raw student %s", s.Key)
			}
			hashes[s.Setting.Loss] = s.Hash
		}
	}
	if len(hashes) != 3 || hashes["kd"] == hashes["dkd"] || hashes["dkd"] == hashes["mse"] {
		t.Errorf("raw students by loss: %v", hashes)
	}
	old, _ := base.Get("students/tau4-kdw0.9-ep20/raw/small/seed-0")
	if hashes["kd"] != old.Hash {
		t.Errorf("kd student in a loss grid: hash %s, alone %s (only its name may change)", hashes["kd"], old.Hash)
	}
	beta := Build(load(t, map[string]string{"teacher.sizes": "[small]", "seeds": "[0]", "kd.loss": "[kd, dkd, mse]", "kd.dkd_beta": "4"}))
	for _, s := range beta.Steps {
		o, _ := grid.Get(s.Key)
		if (o.Hash != s.Hash) != (s.Setting.Loss == "dkd") && s.Stage == StageStudents {
			t.Errorf("kd.dkd_beta: %s (loss %q) hash changed %v", s.Key, s.Setting.Loss, o.Hash != s.Hash)
		}
	}
}

// TestUntemperedLossOncePerGrid: a loss without a temperature (mse) is one
// setting per kd_weight × epochs whatever the τ grid, so no two students
// of a plan compute the same thing (share a hash).
func TestUntemperedLossOncePerGrid(t *testing.T) {
	for _, tc := range []struct {
		loss string
		want []string
	}{
		{"[mse]", []string{"kdw0.9-ep20", "kdw0.5-ep20"}},
		{"[kd, mse]", []string{"kd-tau1-kdw0.9-ep20", "kd-tau1-kdw0.5-ep20", "kd-tau2-kdw0.9-ep20", "kd-tau2-kdw0.5-ep20",
			"kd-tau4-kdw0.9-ep20", "kd-tau4-kdw0.5-ep20", "mse-kdw0.9-ep20", "mse-kdw0.5-ep20"}},
	} {
		c := load(t, map[string]string{"teacher.sizes": "[small]", "seeds": "[0]", "kd.loss": tc.loss,
			"kd.temperature": "[1, 2, 4]", "kd.kd_weight": "[0.9, 0.5]"})
		var names []string
		for _, s := range Settings(c) {
			names = append(names, s.Name())
			if s.Loss == "mse" && s.Tau != 0 {
				t.Errorf("%s: mse setting %s has τ %g", tc.loss, s.Name(), s.Tau)
			}
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("kd.loss %s: settings %v, want %v", tc.loss, names, tc.want)
		}
		seen := map[string]string{}
		for _, s := range Build(c).Steps {
			if prev, ok := seen[s.Hash]; ok {
				t.Errorf("kd.loss %s: %s and %s share hash %s", tc.loss, prev, s.Key, s.Hash)
			}
			seen[s.Hash] = s.Key
		}
	}
}
