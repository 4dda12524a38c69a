package benchjourney

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Run runs the whole benchmark: P2, P1, P5, enrollment, then P6 (which
// parks the most runs). An error means the benchmark could not run, not
// that a target was missed.
func Run(ctx context.Context, cfg Config) (Results, error) {
	if len(cfg.Worker) == 0 || cfg.TuttiBin == "" || cfg.TemporalCLI == "" || cfg.WorkDir == "" {
		return Results{}, errors.New("benchjourney: Worker, TuttiBin, TemporalCLI and WorkDir are required")
	}
	res := Results{Commit: cfg.Commit, Size: cfg.Size(), Started: time.Now(), Load: [2]string{loadAverage()}}
	h := &harness{cfg: cfg, http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients}}}
	defer h.tearDown()
	if err := h.setUp(ctx); err != nil {
		return res, err
	}
	cfg.logf("set up: scratch database %s, worker pid %d, API %s", cfg.DatabaseName, h.worker.pid(), h.apiURL)

	figs, notes, err := h.p2(ctx)
	if err != nil {
		return res, err
	}
	p2n := len(figs)
	res.Notes = notes
	steps := []func(context.Context) ([]Figure, error){h.p1, h.p5, h.enroll, h.p6}
	for _, step := range steps {
		f, err := step(ctx)
		if err != nil {
			return res, err
		}
		figs = append(figs, f...)
	}
	// P1 first in the table, then P2, as the issue lists them.
	res.Figures = append(append(append([]Figure{}, figs[p2n:p2n+2]...), figs[:p2n]...), figs[p2n+2:]...)
	res.EnrollFailed = h.enrollFailed
	res.Load[1] = loadAverage()
	res.Duration = time.Since(res.Started)
	return res, nil
}
