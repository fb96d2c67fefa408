"""Push delivery: one HTTP attempt per hand-off of a notification (`tasks.deliver_notification`)."""
