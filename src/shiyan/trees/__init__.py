"""Classic tree models (CART; forests and boosting build on :func:`shiyan.trees.cart.grow_cart`)."""

from shiyan.trees.adaboost import AdaBoostClassifier, AdaBoostRegressor
from shiyan.trees.cart import CartTree, DecisionTreeClassifier, DecisionTreeRegressor, grow_cart
from shiyan.trees.forest import RandomForestClassifier, RandomForestRegressor
from shiyan.trees.gbdt import GradientBoostingClassifier, GradientBoostingRegressor
from shiyan.trees.xgb import XGBClassifier, XGBRegressor

__all__ = ["CartTree", "DecisionTreeClassifier", "DecisionTreeRegressor", "grow_cart"]
__all__ += ["GradientBoostingClassifier", "GradientBoostingRegressor"]
__all__ += ["AdaBoostClassifier", "AdaBoostRegressor"]
__all__ += ["RandomForestClassifier", "RandomForestRegressor"]
__all__ += ["XGBClassifier", "XGBRegressor"]
