"""Classic tree models (CART; forests and boosting build on :func:`shiyan.trees.cart.grow_cart`)."""

from shiyan.trees.cart import CartTree, DecisionTreeClassifier, DecisionTreeRegressor, grow_cart

__all__ = ["CartTree", "DecisionTreeClassifier", "DecisionTreeRegressor", "grow_cart"]
