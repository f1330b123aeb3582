"""What a federation is judged by: Group Effect, paired statistics over seeds, group fairness."""
