// Package engagement turns a contact's past engagement (opens, clicks,
// replies) into the two choices a send step can ask for: the best hour of
// the week to send (send_time: best) and the best channel (channel: best).
// It is pure Go: the send activities read the counts from PostgreSQL and
// the interpreter only ever sees the chosen instant or channel.
//
// # Best hour: a Dirichlet-multinomial posterior
//
// A contact's engagements fall into 168 hour-of-week cells of their local
// time (Monday 00:00 is cell 0). Their counts n_c are read as draws from a
// multinomial whose cell probabilities have a Dirichlet prior centred on the
// workspace's own pattern p_c with concentration k (PriorWeight): the
// posterior mean of cell c is
//
//	(n_c + k·p_c) / (N + k)
//
// so a contact with no history gets the workspace's pattern, and one with
// N engagements moves away from it in proportion N/(N+k): k = 8 means
// "eight of your own engagements weigh as much as the whole workspace". The
// workspace pattern itself gets half a pseudo-engagement per cell
// (Jeffreys), so an empty workspace is uniform rather than undefined.
//
// Each cell's posterior is then smoothed (HourModel): with its two
// neighbours (weight Neighbour each, wrapping Sunday 23:00 to Monday
// 00:00), since a person who opened at 10:20 twice is nearly as likely to
// open at 09:50, and with the mean of the same hour on the other six days
// (weight Daily), since routines repeat daily and a week has 168 cells but
// a contact rarely has more than a few dozen engagements. Smoothing is
// linear, so it can be read as applying it to the counts and the prior
// alike. The defaults (k = 8, Neighbour 0.15, Daily 0.4) come from the
// offline evaluation (eval_test.go, figures in README): k = 8 is the best
// prior weight there; a Daily of 0.6 scores a little higher on its
// generator, whose routines repeat exactly every day by construction, and
// 0.4 keeps more weight on the day itself for people whose weekends differ.
//
// Why this and not a per-contact argmax, a mean hour or a learned model:
// the argmax of a few events is noise; a mean hour is wrong for people
// with two habits (lunch and evening); a learned model needs features the
// workspace may not have. The posterior needs only counts, shrinks exactly
// as much as the evidence warrants, and its numbers can be shown to
// support (tutti why prints the counts, k and the chosen cell).
//
// # Best channel: a Beta-binomial posterior per channel
//
// For each channel the gate allows, the engagement rate is the posterior
// mean (engaged + k·p) / (sent + k), with p the workspace's rate on that
// channel and k = ChannelPriorWeight pseudo-sends; the highest wins, and on
// equal rates the cheaper channel (the send-gate settings' channel_costs).
package engagement
