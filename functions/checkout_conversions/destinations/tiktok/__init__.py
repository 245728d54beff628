"""TikTok's Events API 2.0: settings, match keys, payload and answers, all of TikTok in one folder."""
