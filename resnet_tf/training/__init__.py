"""Training: runtime set-up, the task (model, data, optimizer, loss), callbacks and the fit loop."""
