"""Card and cash: the card terminal's daily report against the till's card payments
(confirming the ones taken offline), the cash per till per day from the Z reports, and
the review of the flags offline sales carry."""
