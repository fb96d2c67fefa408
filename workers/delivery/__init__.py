"""Push delivery: one HTTP attempt per notification per hand-off, a subscription's notifications
handed off in batches (`tasks.deliver_notifications`)."""
