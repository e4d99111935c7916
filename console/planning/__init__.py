"""Planning: schedules (one-off, recurring, event reminders), events, the French send
rules, the fatigue cap and the scheduler that turns due occurrences into campaigns."""
