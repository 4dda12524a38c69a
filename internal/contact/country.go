package contact

import "strings"

// isoCountries is every officially assigned ISO 3166-1 alpha-2 code, plus XK
// (Kosovo, user-assigned but what phone libraries and most systems use).
const isoCountries = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"XK " +
	"YE YT " +
	"ZA ZM ZW"

var countries = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(isoCountries) {
		m[c] = true
	}
	return m
}()

// NormalizeCountry trims and upper-cases an ISO 3166-1 alpha-2 country code
// ("fr" → "FR") and checks that it is an assigned one. Empty is valid: it
// means "not known".
func NormalizeCountry(s string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	switch {
	case c == "":
		return "", nil
	case c == "UK":
		return "", invalid("country", `%q is not an ISO 3166-1 alpha-2 code; the United Kingdom is "GB"`, s)
	case !countries[c]:
		return "", invalid("country", "%q is not an ISO 3166-1 alpha-2 country code (two letters, e.g. US, FR)", s)
	}
	return c, nil
}
