package benchjourney

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Figure is one measured figure on both sides.
type Figure struct {
	Name, Unit  string
	Tutti, Hand float64
	// Ratio is Tutti ÷ hand-written when it is not simply Tutti/Hand (the
	// median of per-round ratios); 0 means Tutti/Hand.
	Ratio  float64
	Detail string
	// Target is issue 10's target, if it sets one; Meets checks it.
	Target string
	Meets  func(Figure) bool
}

// ratio is Tutti ÷ hand-written.
func (f Figure) ratio() float64 {
	if f.Ratio != 0 {
		return f.Ratio
	}
	if f.Hand == 0 {
		return 0
	}
	return f.Tutti / f.Hand
}

func ratioAtLeast(x float64) func(Figure) bool { return func(f Figure) bool { return f.ratio() >= x } }
func ratioAtMost(x float64) func(Figure) bool  { return func(f Figure) bool { return f.ratio() <= x } }
func tuttiBelow(x float64) func(Figure) bool   { return func(f Figure) bool { return f.Tutti < x } }

// Results is one benchmark run.
type Results struct {
	Commit   string
	Size     string
	Started  time.Time
	Duration time.Duration
	Figures  []Figure
	Notes    []string
	// Load is the machine's 1-minute load average at the start and at the
	// end (/proc/loadavg): how shared the machine was.
	Load [2]string
	// EnrollFailed counts API enrollments that did not answer 201.
	EnrollFailed int
}

// Table is the results as a markdown table with a heading line.
func (r Results) Table() string {
	var b strings.Builder
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	fmt.Fprintf(&b, "Commit `%s`, %s, %d CPUs (%s), %s, run time %s, load average %s at the start and %s at the end. Size: %s.\n\n",
		r.Commit, r.Started.UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpu, runtime.Version(), r.Duration.Round(time.Second),
		r.Load[0], r.Load[1], r.Size)
	b.WriteString("| figure | Tutti | hand-written | Tutti ÷ hand | target | notes |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, f := range r.Figures {
		target := f.Target
		if f.Meets != nil {
			if f.Meets(f) {
				target += ": met"
			} else {
				target += ": **not met**"
			}
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s %s | %.2f× | %s | %s |\n", f.Name, num(f.Tutti), f.Unit, num(f.Hand), f.Unit, f.ratio(), target, f.Detail)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}

// loadAverage is the 1-minute load average, "?" if unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// num prints a figure with precision that suits its size.
func num(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// README markers around the generated block.
const (
	readmeBegin = "<!-- bench-journeys:begin"
	readmeEnd   = "<!-- bench-journeys:end -->"
)

// UpdateReadme replaces the block between the bench-journeys markers in the
// README at path with body (the markers stay).
func UpdateReadme(path, body string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(data)
	i := strings.Index(text, readmeBegin)
	j := strings.Index(text, readmeEnd)
	if i < 0 || j < i {
		return errors.New(path + " has no bench-journeys:begin/end markers")
	}
	// Keep the begin marker's line.
	eol := strings.IndexByte(text[i:], '\n')
	if eol < 0 {
		return errors.New("bench-journeys:begin marker is the last line")
	}
	head := text[:i+eol+1]
	out := head + strings.TrimRight(body, "\n") + "\n" + text[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}

// Print writes the table.
func (r Results) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== Journey benchmark\n\n%s\n", r.Table())
}
