package policy

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Location sources returned by ResolveLocation.
const (
	SourceContact = "contact"
	SourceDefault = "default"
	// Phone sources are "phone:" plus the number's region ("phone:FR").
	sourcePhonePrefix = "phone:"
)

// locCache memoizes successfully loaded zones (the set of IANA names is
// bounded; failures are not cached so junk input cannot grow it).
var locCache sync.Map // string -> *time.Location

func loadLocation(name string) (*time.Location, error) {
	if v, ok := locCache.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locCache.Store(name, loc)
	return loc, nil
}

// phoneInfo is what the phone number tells: its region and candidate zones.
type phoneInfo struct {
	region string // ISO alpha-2 ("FR"), "" if unknown
	label  string // region or "+<country code>" for the source string
	zones  []string
	parsed bool
}

// phoneMemo memoizes parsePhone by (phone, default region). Parsing with
// libphonenumber's regular expressions is about half of a decision's CPU,
// and its result depends on its arguments only. The memo is bounded: when
// full it is emptied and refills with the numbers in use.
var phoneMemo struct {
	sync.Mutex
	m map[[2]string]phoneInfo
}

const phoneMemoMax = 1 << 16

// cachedPhone is parsePhone through phoneMemo. The zones slice is shared:
// callers only read it.
func cachedPhone(phone, defaultRegion string) phoneInfo {
	key := [2]string{phone, defaultRegion}
	phoneMemo.Lock()
	pi, ok := phoneMemo.m[key]
	phoneMemo.Unlock()
	if ok {
		return pi
	}
	pi = parsePhone(phone, defaultRegion)
	phoneMemo.Lock()
	if phoneMemo.m == nil || len(phoneMemo.m) >= phoneMemoMax {
		phoneMemo.m = make(map[[2]string]phoneInfo, 1024)
	}
	phoneMemo.m[key] = pi
	phoneMemo.Unlock()
	return pi
}

func parsePhone(phone, defaultRegion string) phoneInfo {
	phone = strings.TrimSpace(phone)
	if phone == "" {
		return phoneInfo{}
	}
	region := defaultRegion
	if region == "" {
		region = "ZZ" // unknown: only +E.164 parses
	}
	num, err := phonenumbers.Parse(phone, region)
	if err != nil {
		return phoneInfo{}
	}
	pi := phoneInfo{parsed: true}
	r := phonenumbers.GetRegionCodeForNumber(num)
	if r == "" || r == "ZZ" || r == "001" {
		r = ""
		pi.label = "+" + strconv.Itoa(int(num.GetCountryCode()))
	} else {
		pi.label = r
	}
	pi.region = r
	zones, err := phonenumbers.GetTimezonesForNumber(num)
	if err != nil {
		return pi
	}
	pi.zones = zones
	// A number that only maps to its country code's full zone list (NANP
	// toll-free, unknown area codes) says nothing about where the contact is.
	if len(zones) > 1 {
		if all, err := phonenumbers.GetTimezonesForPrefix("+" + strconv.Itoa(int(num.GetCountryCode()))); err == nil && slices.Equal(all, zones) {
			pi.zones = nil
		}
	}
	return pi
}

// Reference instants for a zone's offsets: winter and summer of one year.
var (
	refJan = time.Date(2025, time.January, 15, 12, 0, 0, 0, time.UTC)
	refJul = time.Date(2025, time.July, 15, 12, 0, 0, 0, time.UTC)
)

// pickZone chooses deterministically among the phone's candidate zones:
//
//   - one loadable candidate: it;
//   - several with the same offsets all year (Europe/Guernsey, Europe/London):
//     the first by name;
//   - several that differ (America/Adak, America/Anchorage): the westernmost
//     by standard (winter) offset, ties by name. Deferred sends pile up at
//     the window opening; taking the westernmost zone makes that opening no
//     earlier than the window start in every candidate zone.
func pickZone(zones []string) *time.Location {
	type cand struct {
		name     string
		loc      *time.Location
		jan, jul int
	}
	var cs []cand
	for _, z := range zones {
		if z == "" || z == phonenumbers.UNKNOWN_TIMEZONE {
			continue
		}
		loc, err := loadLocation(z)
		if err != nil {
			continue
		}
		_, jan := refJan.In(loc).Zone()
		_, jul := refJul.In(loc).Zone()
		cs = append(cs, cand{z, loc, jan, jul})
	}
	if len(cs) == 0 {
		return nil
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if d := min(a.jan, a.jul) - min(b.jan, b.jul); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	return cs[0].loc
}

// ResolveLocation returns the zone in which the contact's local time is
// judged, and where it came from:
//
//  1. "contact": ContactState.TimeZone, when it is a valid IANA name;
//  2. "phone:CC": the phone number's zone (the libphonenumber prefix table
//     already resolves the area code where it decides the zone; see pickZone
//     for several candidates; a number mapping to its whole country code, such
//     as a NANP toll-free number, is ignored);
//  3. "default": Settings.DefaultTimeZone, or UTC when that is empty or invalid.
func ResolveLocation(contact ContactState, s Settings) (*time.Location, string) {
	return resolveLocation(contact, s, cachedPhone(contact.Phone, s.DefaultRegion))
}

func resolveLocation(contact ContactState, s Settings, pi phoneInfo) (*time.Location, string) {
	if tz := strings.TrimSpace(contact.TimeZone); tz != "" {
		if loc, err := loadLocation(tz); err == nil {
			return loc, SourceContact
		}
	}
	if loc := pickZone(pi.zones); loc != nil {
		return loc, sourcePhonePrefix + pi.label
	}
	if s.DefaultTimeZone != "" {
		if loc, err := loadLocation(s.DefaultTimeZone); err == nil {
			return loc, SourceDefault
		}
	}
	return time.UTC, SourceDefault
}

// contactCountry is the country whose quiet-hours rule applies: the contact's
// country, else the phone number's region; "" when neither is known.
func contactCountry(contact ContactState, pi phoneInfo) (string, string) {
	if c := strings.ToUpper(strings.TrimSpace(contact.Country)); c != "" {
		return c, "contact"
	}
	if pi.region != "" {
		return pi.region, "phone"
	}
	return "", ""
}
