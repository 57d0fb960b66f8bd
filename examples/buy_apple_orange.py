"""Buying apples and oranges with 10% tax: MulLayers joined by an AddLayer.

The book's example (Deep Learning from Scratch, 5.4.2), with its two typos fixed
(``mul_fruit_layer`` is ``add_fruit_layer``; the stray ``xt`` is gone). Prints the
final price, then its derivative with respect to each input.
"""

import sys
from pathlib import Path

try:
    from backprop import AddLayer, MulLayer
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from backprop import AddLayer, MulLayer

apple_num = 2
apple = 100
orange = 150
orange_num = 3
tax = 1.1

# Layers
mul_apple_layer = MulLayer()
mul_orange_layer = MulLayer()
mul_tax_layer = MulLayer()
add_fruit_layer = AddLayer()

# Forward
apple_price = mul_apple_layer.forward(apple_num, apple)
orange_price = mul_orange_layer.forward(orange_num, orange)
fruit_price = add_fruit_layer.forward(apple_price, orange_price)
price = mul_tax_layer.forward(fruit_price, tax)

# Backward
dprice = 1
dfruit_price, dtax = mul_tax_layer.backward(dprice)
dapple_price, dorange_price = add_fruit_layer.backward(dfruit_price)
dapple_num, dapple = mul_apple_layer.backward(dapple_price)
dorange_num, dorange = mul_orange_layer.backward(dorange_price)

print(price)
print(dapple_num, dapple, dorange, dorange_num, dtax)
