"""The learning pipeline: labels, point-in-time datasets, splits, search, audit, promotion.

Every model goes through the same steps: :mod:`.dataset` builds a training set from the log
or the archive (features as of each labelled moment), :mod:`.splits` holds out validation and
test data, :mod:`.search` selects hyperparameters by stratified k-fold cross-validation,
:mod:`.audit` measures every segment, :mod:`.promotion` decides whether a candidate replaces
the current version and :mod:`.retrain` runs the loop unattended. Heavy libraries (Optuna,
scikit-learn) are imported inside the functions that need them.
"""
