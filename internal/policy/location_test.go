package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestResolveLocation(t *testing.T) {
	base := DefaultSettings()
	paris := base
	paris.DefaultTimeZone = "Europe/Paris"
	badDefault := base
	badDefault.DefaultTimeZone = "Mars/Olympus"
	usRegion := base
	usRegion.DefaultRegion = "US"

	tests := []struct {
		name       string
		contact    ContactState
		settings   Settings
		wantZone   string
		wantSource string
	}{
		{"contact zone wins over phone", ContactState{TimeZone: "Asia/Tokyo", Phone: "+33612345678"}, base, "Asia/Tokyo", "contact"},
		{"contact zone with spaces", ContactState{TimeZone: " Asia/Tokyo "}, base, "Asia/Tokyo", "contact"},
		{"invalid contact zone falls back to phone", ContactState{TimeZone: "Nowhere/City", Phone: "+33612345678"}, base, "Europe/Paris", "phone:FR"},
		{"FR mobile", ContactState{Phone: "+33612345678"}, base, "Europe/Paris", "phone:FR"},
		{"DE mobile", ContactState{Phone: "+4915112345678"}, base, "Europe/Berlin", "phone:DE"},
		{"US area code 212 is New York", ContactState{Phone: "+12125551234"}, base, "America/New_York", "phone:US"},
		{"US area code 415 is Los Angeles", ContactState{Phone: "+14155550100"}, base, "America/Los_Angeles", "phone:US"},
		{"US area code 312 is Chicago", ContactState{Phone: "+13125550000"}, base, "America/Chicago", "phone:US"},
		{"CA area code 604 is Vancouver", ContactState{Phone: "+16045551234"}, base, "America/Vancouver", "phone:CA"},
		{"Alaska 907: two zones, westernmost by standard offset", ContactState{Phone: "+19075551234"}, base, "America/Adak", "phone:US"},
		{"GB-range mobile: equivalent zones, first by name", ContactState{Phone: "+447911123456"}, base, "Europe/Guernsey", "phone:GG"},
		{"NANP toll-free says nothing: default", ContactState{Phone: "+18005551234"}, paris, "Europe/Paris", "default"},
		{"unparsable phone: default", ContactState{Phone: "not a number"}, paris, "Europe/Paris", "default"},
		{"national number without region: default", ContactState{Phone: "2125551234"}, paris, "Europe/Paris", "default"},
		{"national number with DefaultRegion US", ContactState{Phone: "2125551234"}, usRegion, "America/New_York", "phone:US"},
		{"nothing known: default", ContactState{}, paris, "Europe/Paris", "default"},
		{"empty default: UTC", ContactState{}, Settings{}, "UTC", "default"},
		{"invalid default: UTC", ContactState{}, badDefault, "UTC", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, src := ResolveLocation(tt.contact, tt.settings)
			assert.Equal(t, tt.wantZone, loc.String())
			assert.Equal(t, tt.wantSource, src)
		})
	}
}

func TestContactCountry(t *testing.T) {
	c, src := contactCountry(ContactState{Country: "de", Phone: "+33612345678"}, parsePhone("+33612345678", ""))
	assert.Equal(t, "DE", c)
	assert.Equal(t, "contact", src)
	c, src = contactCountry(ContactState{Phone: "+33612345678"}, parsePhone("+33612345678", ""))
	assert.Equal(t, "FR", c)
	assert.Equal(t, "phone", src)
	c, _ = contactCountry(ContactState{}, parsePhone("", ""))
	assert.Equal(t, "", c)
}
