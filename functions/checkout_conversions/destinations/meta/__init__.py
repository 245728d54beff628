"""Meta's Conversions API: settings, match keys, payload and answers, all of Meta in one folder."""
