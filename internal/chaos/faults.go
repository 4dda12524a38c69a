package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Duration is a time.Duration written as "3s" in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Faults are the fake's fault rates, each the probability that one request
// to a send endpoint gets that fault. Error500, Throttle429, Hang and Drop
// exclude each other; Slow is drawn on its own and delays whatever else
// happens.
type Faults struct {
	// Error500: answer 500 with the provider's error envelope; the message
	// is not accepted.
	Error500 float64 `json:"error_500"`
	// Throttle429: answer 429 with Retry-After (RetryAfterSeconds); not
	// accepted.
	Throttle429 float64 `json:"throttle_429"`
	// Slow: take SlowMin..SlowMax to answer. The message is accepted at a
	// random moment within that time, so a sender killed meanwhile may or
	// may not have got it through.
	Slow float64 `json:"slow"`
	// Hang: accept the message (record it) and never answer; the connection
	// stays open until the client gives up, or HangMax passes and the fake
	// closes it.
	Hang float64 `json:"hang"`
	// Drop: accept the message and close the connection at once without an
	// answer.
	Drop float64 `json:"drop"`

	SlowMin           Duration `json:"slow_min"`
	SlowMax           Duration `json:"slow_max"`
	HangMax           Duration `json:"hang_max"`
	RetryAfterSeconds int      `json:"retry_after_seconds"`
	// Reads applies Error500, Throttle429 and Slow to Twilio's Messages list
	// (GET) too: a read-back must survive a failing provider as well.
	Reads bool `json:"reads"`
}

// DefaultFaults are the rates `make chaos` uses unless told otherwise.
func DefaultFaults() Faults {
	return Faults{
		Error500:          0.05,
		Throttle429:       0.05,
		Slow:              0.05,
		Hang:              0.01,
		Drop:              0.01,
		SlowMin:           Duration(2 * time.Second),
		SlowMax:           Duration(5 * time.Second),
		HangMax:           Duration(2 * time.Minute),
		RetryAfterSeconds: 1,
		Reads:             true,
	}
}

// Validate reports every problem, each naming its field.
func (f Faults) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_500", f.Error500}, {"throttle_429", f.Throttle429}, {"slow", f.Slow}, {"hang", f.Hang}, {"drop", f.Drop}} {
		if r.v < 0 || r.v > 1 {
			errs = append(errs, fmt.Errorf("%s: must be a probability in [0, 1], got %g", r.name, r.v))
		}
	}
	if sum := f.Error500 + f.Throttle429 + f.Hang + f.Drop; sum > 1 {
		errs = append(errs, fmt.Errorf("error_500 + throttle_429 + hang + drop: must be at most 1, got %g", sum))
	}
	if f.SlowMin < 0 || f.SlowMax < f.SlowMin {
		errs = append(errs, fmt.Errorf("slow_min, slow_max: want 0 <= slow_min <= slow_max, got %s, %s", time.Duration(f.SlowMin), time.Duration(f.SlowMax)))
	}
	if f.HangMax <= 0 {
		errs = append(errs, errors.New("hang_max: must be positive"))
	}
	if f.RetryAfterSeconds < 1 {
		errs = append(errs, errors.New("retry_after_seconds: must be at least 1"))
	}
	return errors.Join(errs...)
}

func (f Faults) String() string {
	b, _ := json.Marshal(f)
	return string(b)
}

// Fault kinds drawn per request.
const (
	faultNone = ""
	fault500  = "error_500"
	fault429  = "throttle_429"
	faultHang = "hang"
	faultDrop = "drop"
	faultSlow = "slow"
)

// draw is the fault for one request: the exclusive kind ("" for none) and a
// delay (0 unless slow), from two uniform numbers u (kind) and v (slow) and
// a third w placing the delay within SlowMin..SlowMax.
func (f Faults) draw(rng *rand.Rand, send bool) (kind string, delay time.Duration) {
	u, v, w := rng.Float64(), rng.Float64(), rng.Float64()
	if v < f.Slow {
		delay = time.Duration(f.SlowMin) + time.Duration(w*float64(f.SlowMax-f.SlowMin))
	}
	switch {
	case u < f.Error500:
		kind = fault500
	case u < f.Error500+f.Throttle429:
		kind = fault429
	case !send:
		// Reads are never hung or dropped: there is nothing to accept.
	case u < f.Error500+f.Throttle429+f.Hang:
		kind = faultHang
	case u < f.Error500+f.Throttle429+f.Hang+f.Drop:
		kind = faultDrop
	}
	return kind, delay
}
