"""What reminders to patients and alerts to therapists share: leases, retries, delivery outcomes."""
