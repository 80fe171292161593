"""Ranking: competitions, live leaderboards, cards, bulletins, the big screen."""
