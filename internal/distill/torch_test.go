package distill

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/kdcal/kdcal/internal/testutil"
)

// torchScript reads {"s", "t", "y", "c", "tau", "loss"} and prints the
// loss torch computes: mdistiller's dkd_loss (verbatim but for the import
// of F) or F.mse_loss.
const torchScript = `
import json, sys, torch
import torch.nn.functional as F
def _get_gt_mask(logits, target):
    target = target.reshape(-1)
    return torch.zeros_like(logits).scatter_(1, target.unsqueeze(1), 1).bool()
def _get_other_mask(logits, target):
    target = target.reshape(-1)
    return torch.ones_like(logits).scatter_(1, target.unsqueeze(1), 0).bool()
def cat_mask(t, mask1, mask2):
    t1 = (t * mask1).sum(dim=1, keepdims=True)
    t2 = (t * mask2).sum(1, keepdims=True)
    return torch.cat([t1, t2], dim=1)
def dkd_loss(logits_student, logits_teacher, target, alpha, beta, temperature):
    gt_mask = _get_gt_mask(logits_student, target)
    other_mask = _get_other_mask(logits_student, target)
    pred_student = F.softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)
    pred_student = cat_mask(pred_student, gt_mask, other_mask)
    pred_teacher = cat_mask(pred_teacher, gt_mask, other_mask)
    log_pred_student = torch.log(pred_student)
    tckd_loss = (F.kl_div(log_pred_student, pred_teacher, size_average=False) * (temperature**2) / target.shape[0])
    pred_teacher_part2 = F.softmax(logits_teacher / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(logits_student / temperature - 1000.0 * gt_mask, dim=1)
    nckd_loss = (F.kl_div(log_pred_student_part2, pred_teacher_part2, size_average=False) * (temperature**2) / target.shape[0])
    return alpha * tckd_loss + beta * nckd_loss
d = json.load(sys.stdin)
c = d["c"]
s = torch.tensor(d["s"], dtype=torch.float64).reshape(-1, c)
t = torch.tensor(d["t"], dtype=torch.float64).reshape(-1, c)
y = torch.tensor(d["y"], dtype=torch.int64)
if d["loss"] == "dkd":
    v = dkd_loss(s, t, y, 1.0, 8.0, d["tau"])
else:
    v = F.mse_loss(s, t)
print(json.dumps(float(v)))
`

// torchCrossCheck compares l's Reference with the script's value on 16
// random examples of 10 classes at τ ∈ {1, 4}. The teacher's logits go to
// Targets in float64 and through float32 storage, so the script gets the
// float32-rounded values Reference sees (times τ back for dkd).
func torchCrossCheck(t *testing.T, name string, l Loss) {
	testutil.Slow(t, "torch cross-check of the "+name+" loss: one python process per τ")
	testutil.RequirePython(t, "torch")
	const n, c = 16, 10
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tau := range []float64{1, 4} {
		s, z, y := make([]float64, n*c), make([]float64, n*c), make([]int, n)
		for i := range s {
			s[i], z[i] = 3*rng.NormFloat64(), 3*rng.NormFloat64()
		}
		for i := range y {
			y[i] = rng.IntN(c)
		}
		targets, err := l.Targets(z, c, tau)
		if err != nil {
			t.Fatal(err)
		}
		teacher := make([]float64, len(targets)) // what the loss sees, as logits
		for i, v := range targets {
			teacher[i] = float64(v)
			if name == "dkd" {
				teacher[i] *= tau
			}
		}
		in, _ := json.Marshal(map[string]any{"s": s, "t": teacher, "y": y, "c": c, "tau": tau, "loss": name})
		cmd := exec.Command(testutil.Python, "-c", torchScript)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("torch: %v", err)
		}
		var want float64
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatal(err)
		}
		got, _ := l.Reference(s, targets, y, c, tau)
		if math.Abs(got-want) > 1e-9*(1+math.Abs(want)) {
			t.Errorf("%s τ=%v: kdcal %.12g, torch %.12g", name, tau, got, want)
		}
	}
}
