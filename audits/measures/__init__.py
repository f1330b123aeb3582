"""What an audit measures on a classifier's predictions: utility, group and individual fairness."""
