package cli

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLossGridEndToEnd runs a tiny study with kd.loss [kd, mse] over τ
// {1, 4}: kd trains a student per τ, mse (which has no temperature) one
// per arm, and the report carries the mse setting with an empty τ.
func TestLossGridEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(externalStudy(dir, "losses", ""), "kd: {temperature: [4],", "kd: {loss: [kd, mse], temperature: [1, 4],", 1)
	writeFile(t, filepath.Join(dir, "study.yaml"), []byte(cfg))
	if code, _, stderr := run(t, dir, nil, "run", "--config", "study.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	root := filepath.Join(dir, "exp", "losses")
	settings, err := filepath.Glob(filepath.Join(root, "students", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range settings {
		names = append(names, filepath.Base(s))
	}
	want := []string{"kd-tau1-kdw0.9-ep2", "kd-tau4-kdw0.9-ep2", "mse-kdw0.9-ep2"}
	if !slices.Equal(names, want) {
		t.Fatalf("student settings %v, want %v", names, want)
	}
	b, err := os.ReadFile(filepath.Join(root, "students", "mse-kdw0.9-ep2", "calibrated", "small", "seed-0", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if _, ok := sum["tau"]; ok || sum["loss"] != "mse" {
		t.Errorf("mse student summary: tau %v, loss %v (want no tau, loss mse)", sum["tau"], sum["loss"])
	}
	f, err := os.Open(filepath.Join(root, "report", "steps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	tau := slices.Index(rows[0], "tau")
	var mse int
	for _, r := range rows[1:] {
		if strings.HasPrefix(r[1], "students/mse-") {
			mse++
			if r[tau] != "" {
				t.Errorf("steps.csv %s: tau %q, want empty", r[1], r[tau])
			}
		}
	}
	if mse != 2 {
		t.Errorf("steps.csv lists %d mse students, want 2 (raw, calibrated)", mse)
	}
	if _, err := os.Stat(filepath.Join(root, "report", "tables", "mse-kdw0.9-ep2.csv")); err != nil {
		t.Errorf("report table of the mse setting: %v", err)
	}
	// The README states each setting's own loss, not kd's formula for all.
	readme, err := os.ReadFile(filepath.Join(root, "report", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Loss of the raw arm (from its students' manifests): `0.1·CE(y, s) + 0.9·MSE(s, t)`",
		"Loss of the raw arm (from its students' manifests): `0.1·CE(y, s) + 0.9·4²·KL(softmax(t/4) ‖ softmax(s/4))`"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("report README lacks %q", want)
		}
	}
	if strings.Contains(string(readme), "kd_weight·τ²·KL)") {
		t.Error("report README gives kd's loss for a grid with mse")
	}
}
