package train

import (
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// reporter shows a run's progress: a progress bar (throughput, ETA) and a
// line per epoch on a terminal, or one log record per epoch otherwise.
type reporter struct {
	j       Job
	bar     *progressbar.ProgressBar
	start   time.Time
	first   int // epochs done before this call (resumed)
	pending int // samples trained but not yet added to the bar (see add)
}

// rateWindow is how long training runs before the bar is first drawn: its
// throughput and ETA are then averaged over at least this long.
const rateWindow = time.Second

// isTerminal reports whether w is a terminal (a variable for the tests).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newReporter(j Job, done, n int) *reporter {
	r := &reporter{j: j, start: time.Now(), first: done}
	left := j.Recipe.Epochs - done
	if left > 0 && j.Progress != nil && isTerminal(j.Progress) {
		r.bar = progressbar.NewOptions64(int64(left*n),
			progressbar.OptionSetWriter(j.Progress),
			progressbar.OptionSetDescription(r.describe(done+1)),
			progressbar.OptionSetItsString("img"),
			progressbar.OptionShowIts(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(250*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		r.bar.StartWithoutRender() // its clock starts with training, not at its first frame
	}
	if done > 0 {
		r.note(fmt.Sprintf("resumed from checkpoint after epoch %d of %d", done, j.Recipe.Epochs))
	}
	return r
}

func (r *reporter) describe(epoch int) string {
	return fmt.Sprintf("%s epoch %d/%d", r.j.Label, epoch, r.j.Recipe.Epochs)
}

// note reports a one-off event.
func (r *reporter) note(msg string) {
	if r.bar != nil {
		_ = r.bar.Clear()
		fmt.Fprintf(r.j.Progress, "%s: %s\n", r.j.Label, msg)
		return
	}
	if r.j.Log != nil {
		r.j.Log.Info(msg, "job", r.j.Label)
	}
}

// add counts n trained samples. The bar is first drawn after rateWindow
// (or at the end of the first epoch): drawn at the first batch, it divided
// that batch by the microseconds since its clock started and showed
// millions of images per second and an ETA of zero.
func (r *reporter) add(n int) {
	if r.bar == nil {
		return
	}
	r.pending += n
	if time.Since(r.start) < rateWindow {
		return
	}
	r.flush()
}

// flush adds the samples held back by add to the bar.
func (r *reporter) flush() {
	if r.pending > 0 {
		_ = r.bar.Add(r.pending)
		r.pending = 0
	}
}

// epochDone reports a finished epoch.
func (r *reporter) epochDone(rec Record) {
	done := rec.Epoch - r.first
	left := r.j.Recipe.Epochs - rec.Epoch
	eta := time.Duration(float64(time.Since(r.start)) / float64(done) * float64(left)).Round(time.Second)
	if r.bar != nil {
		r.flush()
		_ = r.bar.Clear()
		fmt.Fprintf(r.j.Progress, "%s epoch %d/%d: train loss %.4f acc %.4f | val nll %.4f acc %.4f ece %.4f | %.1f ms/step %.0f img/s | eta %s\n",
			r.j.Label, rec.Epoch, r.j.Recipe.Epochs, rec.TrainLoss, rec.TrainAcc, rec.ValNLL, rec.ValAcc, rec.ValECE,
			rec.MsPerStep, rec.SamplesPerSec, eta)
		r.bar.Describe(r.describe(min(rec.Epoch+1, r.j.Recipe.Epochs)))
		return
	}
	if r.j.Log != nil {
		r.j.Log.Info("epoch", "job", r.j.Label, "epoch", fmt.Sprintf("%d/%d", rec.Epoch, r.j.Recipe.Epochs),
			"train_loss", round4(rec.TrainLoss), "train_acc", round4(rec.TrainAcc),
			"val_nll", round4(rec.ValNLL), "val_acc", round4(rec.ValAcc), "val_ece", round4(rec.ValECE),
			"ms_per_step", round4(rec.MsPerStep), "samples_per_s", int(rec.SamplesPerSec+0.5), "eta", eta.String())
	}
}

// finish removes the bar; ok says whether the run completed.
func (r *reporter) finish(ok bool) {
	if r.bar == nil {
		return
	}
	if ok {
		_ = r.bar.Finish()
		return
	}
	_ = r.bar.Exit()
	fmt.Fprintln(r.j.Progress)
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
