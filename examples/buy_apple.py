"""Buying two apples with 10% tax: forward and backward through two MulLayers.

The book's example (Deep Learning from Scratch, 5.4.1). Prints the prices, then the
derivative of the final price with respect to each input.
"""

import sys
from pathlib import Path

try:
    from backprop import MulLayer
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from backprop import MulLayer

apple = 100
apple_num = 2
tax = 1.1

# Layers
mul_apple_layer = MulLayer()
mul_tax_layer = MulLayer()

# Forward
apple_price = mul_apple_layer.forward(apple, apple_num)
price = mul_tax_layer.forward(apple_price, tax)

print(apple_price)
print(price)

# Backward
dprice = 1
dapple_price, dtax = mul_tax_layer.backward(dprice)
dapple, dapple_num = mul_apple_layer.backward(dapple_price)

print(dapple, dapple_num, dtax)
