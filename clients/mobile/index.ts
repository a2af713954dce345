import 'react-native-gesture-handler';
import { registerRootComponent } from 'expo';
import { Root } from './src/App';

registerRootComponent(Root);
