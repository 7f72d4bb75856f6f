"""The service desk: chat conversations with shoppers, canned answers, the staff
knowledge board, and keeping in touch after a purchase (NPS)."""
